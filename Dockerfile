# One image for both services; APP and PORT pick which one runs.
#   docker build -t daca .
#   docker run -e APP=daca.memory.app -e PORT=8001 daca
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The hash-locked pins first, so the layer is reused until they change.
COPY requirements/main.txt requirements/main.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/main.txt

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps . && useradd --uid 10001 --no-create-home daca

USER 10001
ENV APP=daca.chat.app PORT=8010 LOG_LEVEL=INFO
EXPOSE 8010 8001
CMD ["sh", "-c", "exec uvicorn \"${APP}:create_app\" --factory --host 0.0.0.0 --port \"${PORT}\""]
