"""The memory service app (app-id ``agent-memory-service``, port 8001).

``uvicorn daca.memory.app:create_app --factory --port 8001``. The lifespan owns the Dapr client
and the summarizer's tasks; nothing is created at import.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from daca.access.guard import apply_mode
from daca.contracts.openapi import DocumentedApp, answer_as_documented
from daca.dapr.client import DaprClient
from daca.dapr.errors import DaprAPIError, SidecarUnavailableError
from daca.dapr.retry import ConcurrencyExhaustedError
from daca.heap import freeze_startup_heap
from daca.logsetup import configure_logging
from daca.memory.container import build_services
from daca.memory.embeddings import Embedder, OpenAIEmbedder
from daca.memory.errors import CorruptRecordError
from daca.memory.metrics import MemoryMetrics
from daca.memory.openapi import access_responses, completion
from daca.memory.routes import conversations, deadletters, memories, root
from daca.memory.settings import MemorySettings
from daca.memory.summarizer import SummaryWriter
from daca.telemetry import tracing
from daca.telemetry.metrics import LLMMetrics

logger = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    settings: MemorySettings | None = None,
    *,
    summary_writer: SummaryWriter | None = None,
    dapr_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the memory service; ``settings`` default to the environment."""
    configure_logging()
    settings = settings or MemorySettings()
    tracing.configure(settings.app_id)
    app = DocumentedApp(
        title="DACA Agent Memory Service",
        description="User metadata, conversation history and summaries on Dapr",
        version="0.1.0",
        lifespan=_lifespan(settings, summary_writer, dapr_transport),
        complete=completion(settings),
    )
    for module, sidecar_only in ((root, False), (memories, True), (conversations, True),
                                 (deadletters, True)):  # fmt: skip
        responses = access_responses(settings, sidecar_only=sidecar_only)
        app.include_router(module.router, responses=responses)
    _add_error_handlers(app)
    apply_mode(app, settings.access, "memory service")
    tracing.instrument_app(app)
    return app


def _lifespan(
    settings: MemorySettings,
    summary_writer: SummaryWriter | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Lifespan:
    """The lifespan: the Dapr client, the summary writer and the summarizer's tasks."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            client = DaprClient.from_settings(
                settings.dapr, timeout=settings.dapr_timeout_seconds, transport=transport
            )
            stack.push_async_callback(client.aclose)
            metrics = MemoryMetrics()
            writer = summary_writer or await _default_writer(stack, settings, metrics.llm)
            embedder = _embedder(settings, stack, metrics.llm)
            services = build_services(settings, client, writer, embedder, metrics)
            stack.push_async_callback(services.summarizer.aclose)
            app.state.services = services
            logger.info(
                "memory service %s using sidecar %s", settings.app_id, settings.dapr.base_url
            )
            freeze_startup_heap()
            yield

    return lifespan


async def _default_writer(
    stack: AsyncExitStack, settings: MemorySettings, metrics: LLMMetrics
) -> SummaryWriter:
    """The LLM summary writer configured from the environment (imported only when needed),
    each of its calls metered and bounded by ``SUMMARY_TIMEOUT_SECONDS``."""
    from daca.llm.summary import LLMSummaryWriter

    writer = LLMSummaryWriter.from_env(timeout=settings.summary_timeout_seconds, metrics=metrics)
    stack.push_async_callback(writer.aclose)
    return writer


def _embedder(
    settings: MemorySettings, stack: AsyncExitStack, metrics: LLMMetrics
) -> Embedder | None:
    """The embeddings client, when ``EMBEDDINGS_BASE_URL``/``EMBEDDINGS_MODEL`` are set."""
    if not (settings.embeddings_base_url and settings.embeddings_model):
        logger.info("search is lexical: no embeddings endpoint configured")
        return None
    key = settings.embeddings_api_key
    embedder = OpenAIEmbedder(
        settings.embeddings_base_url,
        settings.embeddings_model,
        api_key=key.get_secret_value() if key else None,
        timeout=settings.embeddings_timeout_seconds,
        metrics=metrics,
    )
    stack.push_async_callback(embedder.aclose)
    logger.info("search is hybrid: %s", embedder.describe())
    return embedder


def _add_error_handlers(app: FastAPI) -> None:
    """Render sidecar and concurrency failures as 503/502 with a clear message (and the rest
    as ``answer_as_documented`` does)."""
    answer_as_documented(app)
    app.add_exception_handler(SidecarUnavailableError, _sidecar_unavailable)
    app.add_exception_handler(ConcurrencyExhaustedError, _busy)
    app.add_exception_handler(DaprAPIError, _dapr_error)
    app.add_exception_handler(CorruptRecordError, _corrupt_record)


async def _sidecar_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503: the Dapr sidecar (and so the state store) cannot be reached."""
    logger.warning("%s %s: Dapr sidecar unavailable", request.method, request.url.path)
    detail = "Dapr sidecar unavailable: the memory store cannot be reached; try again later"
    return JSONResponse({"detail": detail}, status_code=503)


async def _busy(request: Request, exc: Exception) -> JSONResponse:
    """503: concurrent updates kept conflicting."""
    return JSONResponse({"detail": "too many concurrent updates; try again"}, status_code=503)


async def _corrupt_record(request: Request, exc: Exception) -> JSONResponse:
    """500, saying which stored record is unreadable (and that it was not touched)."""
    return JSONResponse({"detail": str(exc)}, status_code=500)


async def _dapr_error(request: Request, exc: Exception) -> JSONResponse:
    """502: the sidecar answered with an error."""
    assert isinstance(exc, DaprAPIError)
    logger.error(
        "%s %s: Dapr error %s %s", request.method, request.url.path, exc.status, exc.error_code
    )
    detail = f"Dapr sidecar error {exc.status} {exc.error_code or ''}".strip()
    return JSONResponse({"detail": detail, "errorCode": exc.error_code}, status_code=502)
