"""Runtime benchmark: invocation hop, publish-to-delivery latency, delivery throughput on Redis.

Run: ``.venv/bin/python bench/runtime_bench.py [--requests 1000] [--events 3000]``.
It starts the bundled redis-server, the trivial app in ``bench_app.py`` and two sidecars
(``daca sidecar``) as separate processes on free loopback ports, prints the figures and stops
everything. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

from daca.runtime.redis_server import BundledRedis, free_port

COMPONENTS = """apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - name: redisHost
    value: "{redis}"
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def wait_ok(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url)).status_code < 300:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.05)


async def latencies(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def describe(name: str, samples: list[float]) -> str:
    return (
        f"{name:<34} p50 {percentile(samples, 50):7.2f} ms   p99 "
        f"{percentile(samples, 99):7.2f} ms   (n={len(samples)})"
    )


async def bench_invoke(app: str, caller: str, count: int) -> None:
    async with httpx.AsyncClient() as client:
        direct = await latencies(lambda: client.get(f"{app}/ping"), count)
        hop = await latencies(
            lambda: client.get(f"{caller}/v1.0/invoke/bench-app/method/ping"), count
        )
    print(describe("direct HTTP call to the app", direct))
    print(describe("invoke via both sidecars", hop))
    p50, p99 = (percentile(hop, q) - percentile(direct, q) for q in (50, 99))
    print(f"{'overhead (hop minus direct)':<34} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")


async def received_count(client: httpx.AsyncClient, app: str) -> int:
    count: int = (await client.get(f"{app}/received", params={"since": 1 << 30})).json()["count"]
    return count


async def received_item(client: httpx.AsyncClient, app: str, index: int) -> list[float] | None:
    items = (await client.get(f"{app}/received", params={"since": index})).json()["items"]
    return items[0] if items else None


async def bench_publish_latency(app: str, sidecar: str, count: int) -> None:
    samples = []
    async with httpx.AsyncClient() as client:
        await client.delete(f"{app}/received")
        for n in range(count):
            sent = time.time()
            await client.post(f"{sidecar}/v1.0/publish/pubsub/bench", json={"n": n})
            while (item := await received_item(client, app, n)) is None:
                await asyncio.sleep(0.0005)
            samples.append((item[1] - sent) * 1000)
    print(describe("publish -> delivered (Redis)", samples))


async def bench_throughput(app: str, sidecar: str, count: int, publishers: int = 16) -> None:
    """Publish ``count`` events from 16 concurrent publishers (aiohttp, so the load generator is
    not the bottleneck) and time delivery with the app's own receipt timestamps."""
    url = f"{sidecar}/v1.0/publish/pubsub/bench"
    async with httpx.AsyncClient() as client:
        await client.delete(f"{app}/received")
    queue = iter(range(count))
    async with aiohttp.ClientSession() as session:

        async def publisher() -> None:
            for n in queue:
                async with session.post(url, json={"n": n}) as answer:
                    assert answer.status == 204, await answer.text()

        start = time.time()
        await asyncio.gather(*(publisher() for _ in range(publishers)))
        published = time.time() - start
    async with httpx.AsyncClient() as client:
        while await received_count(client, app) < count:
            await asyncio.sleep(0.05)
        items = (await client.get(f"{app}/received")).json()["items"]
    elapsed = max(item[1] for item in items) - start
    print(f"{'publish rate (16 publishers)':<34} {count / published:9.0f} events/s")
    print(
        f"{'delivered, trivial handler (Redis)':<34} {count / elapsed:9.0f} events/s "
        f"({count} events in {elapsed:.2f} s)"
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home, resources = Path(tmp) / "home", Path(tmp) / "components"
        resources.mkdir()
        redis = BundledRedis(free_port(), Path(tmp) / "redis", persistent=False)
        redis.start()
        (resources / "pubsub.yaml").write_text(COMPONENTS.format(redis=redis.address))
        app_port, app_http, caller_http = free_port(), free_port(), free_port()
        env = {"DACA_HOME": str(home)}
        daca = [sys.executable, "-m", "daca", "--log-level", "warning", "sidecar"]
        processes = [
            spawn(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench_app:app",
                    "--port",
                    str(app_port),
                    "--log-level",
                    "warning",
                    "--app-dir",
                    str(Path(__file__).parent),
                ],
                env,
            ),
            spawn(
                [
                    *daca,
                    "--app-id",
                    "bench-app",
                    "--app-port",
                    str(app_port),
                    "--dapr-http-port",
                    str(app_http),
                    "--resources-path",
                    str(resources),
                ],
                env,
            ),
            spawn(
                [
                    *daca,
                    "--app-id",
                    "bench-caller",
                    "--dapr-http-port",
                    str(caller_http),
                    "--resources-path",
                    str(resources),
                ],
                env,
            ),
        ]
        try:
            app, sidecar = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{app_http}"
            for url in (
                f"{app}/ping",
                f"{sidecar}/v1.0/healthz",
                f"http://127.0.0.1:{caller_http}/v1.0/healthz",
            ):
                await wait_ok(url)
            print(
                f"daca runtime benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}"
            )
            await bench_invoke(app, f"http://127.0.0.1:{caller_http}", args.requests)
            await bench_publish_latency(app, sidecar, args.latency_events)
            await bench_throughput(app, sidecar, args.events)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=15)
            redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--events", type=int, default=3000)
    asyncio.run(main(parser.parse_args()))
