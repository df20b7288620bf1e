"""Time to the first streamed token and to the final event of ``POST /chat/stream``.

Runs the whole system with ``daca up`` twice: with the offline model, then with an
OpenAI-compatible model served by a local streaming fake (this script's ``FakeModel``: a reply of
``--words`` words, one chunk each, ``--chunk-ms`` apart). For ``--turns`` turns of one user it
measures, from sending the request: the first ``delta`` event, and the ``done`` event (sent
once the turn is recorded). Ports 8010, 8001, 3500, 3501 must be free.

    .venv/bin/python bench/stream_bench.py [--turns 30] [--words 40] [--chunk-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import serving
from memory_quality import CHAT, System, busy_ports, percentile


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {"id": "bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeModel:
    """A streaming chat-completions server on a loopback port."""

    def __init__(self, words: int, chunk_seconds: float) -> None:
        self.words, self.delay = words, chunk_seconds
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self.base_url = ""

    async def _chat(self, request: Request) -> StreamingResponse:
        await request.body()

        async def chunks() -> AsyncIterator[bytes]:
            yield _chunk({"role": "assistant", "content": ""})
            for n in range(self.words):
                await asyncio.sleep(self.delay)
                yield _chunk({"content": f" word{n}"})
            yield _chunk({}, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @contextmanager
    def running(self) -> Iterator[FakeModel]:
        with serving(self.app) as address:
            self.base_url = f"{address}/v1"
            yield self


def one_turn(client: httpx.Client, n: int) -> tuple[float, float]:
    """Seconds to the first delta and to ``done`` for one streamed turn."""
    body = {"user_id": "bench", "text": f"Tell me something, number {n}."}
    start = time.perf_counter()
    first = None
    with client.stream("POST", f"{CHAT}/chat/stream", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line == "event: delta" and first is None:
                first = time.perf_counter() - start
            if line == "event: done":
                return first or 0.0, time.perf_counter() - start
            if line == "event: error":
                raise RuntimeError("the stream ended with an error event")
    raise RuntimeError("the stream ended without a done event")


def measure(label: str, turns: int, env: dict[str, str | None]) -> None:
    """Run the system with ``env`` applied (``None`` unsets) and report the stream timings."""
    saved = dict(os.environ)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    with tempfile.TemporaryDirectory(prefix="daca-stream-") as home:
        system = System(home, Path(home) / "services.log")
        os.environ.clear()
        os.environ.update(saved)
        try:
            with httpx.Client(timeout=60, trust_env=False) as client:
                system.ready(client)
                one_turn(client, -1)  # warm-up: connections, first model call
                samples = [one_turn(client, n) for n in range(turns)]
        finally:
            system.stop()
    firsts, totals = [s[0] * 1000 for s in samples], [s[1] * 1000 for s in samples]
    sys.stdout.write(
        f"{label:<34} first delta p50 {percentile(firsts, 50):7.1f} ms, "
        f"p95 {percentile(firsts, 95):7.1f} ms | done p50 {percentile(totals, 50):7.1f} ms, "
        f"p95 {percentile(totals, 95):7.1f} ms (n={turns})\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--chunk-ms", type=float, default=20.0)
    args = parser.parse_args()
    if busy := busy_ports():
        raise SystemExit(f"ports in use: {busy}; stop what runs there first")
    offline: dict[str, str | None] = {
        "LLM_BASE_URL": None,
        "LLM_MODEL": None,
        "GEMINI_API_KEY": None,
    }
    measure("offline model", args.turns, offline)
    with FakeModel(args.words, args.chunk_ms / 1000).running() as model:
        label = f"fake model ({args.words} chunks, {args.chunk_ms:g} ms)"
        measure(label, args.turns, {"LLM_BASE_URL": model.base_url, "LLM_MODEL": "bench"})


if __name__ == "__main__":
    main()
