.PHONY: setup run test lint fmt types bench lock
setup: ; bash scripts/setup dev
run: ; bash scripts/run
test: ; bash scripts/test
lint: ; .venv/bin/ruff check src tests bench && .venv/bin/ruff format --check src tests bench
fmt: ; .venv/bin/ruff format src tests bench && .venv/bin/ruff check --fix src tests bench
types: ; .venv/bin/mypy
bench: ; .venv/bin/python bench/runtime_bench.py
lock: ; cd requirements && ../.venv/bin/uv pip compile -q --generate-hashes --python-version 3.11 --no-header main.in -o main.txt && ../.venv/bin/uv pip compile -q --generate-hashes --python-version 3.11 --no-header dev.in -o dev.txt
