"""The cost of tracing on a chat turn: ``POST /chat/`` latency with tracing off and on.

Runs the whole system with ``daca up`` (offline model) three times: without any ``OTEL_*``
variable (no provider, no instrumentation), with spans exported over OTLP/HTTP to a local fake
collector (this script's ``Collector``, which counts the export requests and their bytes), and
with the console exporter (one JSON per span into the services' log). For ``--turns`` turns of
one user it reports the latency percentiles. Ports 8010, 8001, 3500, 3501 must be free.

    .venv/bin/python bench/tracing_bench.py [--turns 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import serving
from memory_quality import CHAT, System, busy_ports, percentile


class Collector:
    """An OTLP/HTTP trace receiver on a loopback port that accepts and counts exports."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.app = Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])
        self.endpoint = ""

    async def _traces(self, request: Request) -> Response:
        self.bytes += len(await request.body())
        self.requests += 1
        return Response(b"", media_type="application/x-protobuf")

    @contextmanager
    def running(self) -> Iterator[Collector]:
        with serving(self.app) as address:
            self.endpoint = address
            yield self


def measure(label: str, turns: int, env: dict[str, str]) -> None:
    """Run the system, offline model, with ``env`` added; report ``turns`` turns' latency."""
    saved = dict(os.environ)
    for name in (
        "LLM_BASE_URL",
        "LLM_MODEL",
        "GEMINI_API_KEY",
        *[n for n in os.environ if n.startswith("OTEL_")],
    ):
        os.environ.pop(name, None)
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="daca-tracing-") as home:
        system = System(home, Path(home) / "services.log")
        os.environ.clear()
        os.environ.update(saved)
        try:
            with httpx.Client(timeout=60, trust_env=False) as client:
                system.ready(client)
                samples = []
                for n in range(turns + 5):
                    body = {"user_id": "bench", "text": f"Note number {n}: I like tea."}
                    start = time.perf_counter()
                    client.post(f"{CHAT}/chat/", json=body).raise_for_status()
                    if n >= 5:  # the first turns warm connections up
                        samples.append((time.perf_counter() - start) * 1000)
        finally:
            system.stop()
    sys.stdout.write(
        f"{label:<36} p50 {percentile(samples, 50):6.1f} ms, p95 {percentile(samples, 95):6.1f}"
        f" ms, p99 {percentile(samples, 99):6.1f} ms (n={turns})\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    if busy := busy_ports():
        raise SystemExit(f"ports in use: {busy}; stop what runs there first")
    measure("tracing off", args.turns, {})
    with Collector().running() as collector:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
        measure("tracing on, OTLP/HTTP to a collector", args.turns, env)
        sys.stdout.write(
            f"  the collector received {collector.requests} exports, {collector.bytes} bytes\n"
        )
    measure("tracing on, console exporter", args.turns, {"OTEL_TRACES_EXPORTER": "console"})


if __name__ == "__main__":
    main()
