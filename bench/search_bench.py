"""Search latency of ``GET /memories/{user}/search`` at 1,000 and 10,000 logged turns.

Run: ``.venv/bin/python bench/search_bench.py [--queries 100]``. It starts the bundled
redis-server, a daca sidecar and the memory service in this process, writes a user's turn log of
N turns directly through the sidecar's state API (varied sentences), then times queries through
the route: the first query on its own (its terms are not cached yet: stemming the turns is most
of its cost), then the median and p99 of the others. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app
from daca.memory.settings import MemorySettings
from daca.memory.userlog import PAGE_SIZE
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from daca.runtime.redis_server import BundledRedis
from daca.runtime.sidecar import Sidecar

_WORD_TEXT = (
    "coffee tea lisbon porto bicycle guitar piano sister brother garden dinner lunch meeting "
    "project deadline holiday flight hotel museum concert movie book recipe soup marathon "
    "doctor dentist birthday wedding puppy kitten apartment rent salary interview python"
)
WORDS = _WORD_TEXT.split()
COMPONENT = """apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: "{redis}"
"""


def sentence(rng: random.Random) -> str:
    return f"I told you about my {rng.choice(WORDS)} and the {rng.choice(WORDS)} last week."


async def seed(dapr: httpx.AsyncClient, user: str, count: int, rng: random.Random) -> None:
    items = [{"key": f"log:{user}", "value": {"count": count, "page_size": PAGE_SIZE}}]
    for page in range(count // PAGE_SIZE):
        turns = [
            {"session_id": f"s{n // 40}", "turn_id": f"t{n}", "user_message": sentence(rng),
             "assistant_reply": "Noted.", "timestamp": "2026-01-01T00:00:00+00:00"}
            for n in range(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)
        ]  # fmt: skip
        items.append({"key": f"log:{user}:page:{page}", "value": {"turns": turns}})
    for start in range(0, len(items), 20):
        answer = await dapr.post("/v1.0/state/statestore", json=items[start : start + 20])
        answer.raise_for_status()


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        redis = BundledRedis(free_port(), Path(tmp) / "redis", persistent=False)
        redis.start()
        resources = Path(tmp) / "components"
        resources.mkdir()
        (resources / "state.yaml").write_text(COMPONENT.format(redis=redis.address))
        sidecar = Sidecar(
            SidecarConfig("agent-memory-service", None, 0, (resources,), bundle_redis=False)
        )
        await sidecar.start()
        try:
            await run(args, rng, sidecar.http_port)
        finally:
            await sidecar.stop()
            redis.stop()


async def run(args: argparse.Namespace, rng: random.Random, sidecar_port: int) -> None:
    import uvicorn

    port = free_port()
    app = create_app(MemorySettings(dapr=DaprSettings(DAPR_HTTP_PORT=sidecar_port)))
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="critical"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    print(f"search latency through the route, Python {sys.version.split()[0]}")
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar_port}", timeout=60) as dapr,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as memory,
    ):
        for count in (1_000, 10_000):
            user = f"user{count}"
            await seed(dapr, user, count, rng)
            samples = []
            for _ in range(args.queries):
                query = f"what about my {rng.choice(WORDS)}?"
                start = time.perf_counter()
                answer = await memory.get(f"/memories/{user}/search", params={"q": query, "k": 10})
                samples.append((time.perf_counter() - start) * 1000)
                answer.raise_for_status()
            first, warm = samples[0], sorted(samples[1:]) or samples
            p99 = warm[min(len(warm) - 1, round(0.99 * (len(warm) - 1)))]
            print(
                f"{count:>6} turns: first {first:6.1f} ms, then p50 {statistics.median(warm):6.1f}"
                f" ms, p99 {p99:6.1f} ms (n={len(warm)}, top 10 of the newest 1000 turns + "
                "pending)"
            )
    server.should_exit = True
    await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    asyncio.run(main(parser.parse_args()))
