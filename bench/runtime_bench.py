"""Runtime benchmark, daca beside real daprd: invocation hop, publish-to-delivery, throughput.

Run: ``.venv/bin/python bench/runtime_bench.py [--rounds 3] [--requests 500] [--events 2000]``.
It starts the bundled redis-server and the trivial app in ``bench_app.py``, then, for each
round, one engine after the other (alternating which goes first): two sidecars (``bench-app``
in front of the app, ``bench-caller`` with no app) as separate processes on free loopback ports,
the same components and the same Redis. daprd is the build of ``daca dapr install``, started on
a loopback-only name-resolution network. Per engine it prints:

- the invocation hop's added latency (p50, p99 of hop minus direct call);
- publish -> delivered latency (one event at a time);
- deliveries per second to a trivial handler (16 concurrent publishers);
- sidecar RSS after the run, and sidecar CPU time per request (invocation: both sidecars;
  delivery: the app's sidecar, which also takes the publishes);

and the ratio daca/daprd of each. Everything shares the machine's cores. Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import redis

from daca.realdapr.build import DAPRD_VERSION, daprd_path
from daca.realdapr.daprd import DaprdSidecar, LoopbackNetwork
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from daca.runtime.redis_server import BundledRedis

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
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Figures:
    """Everything measured for one engine, over all rounds."""

    direct: list[float] = field(default_factory=list)
    hop: list[float] = field(default_factory=list)
    delivered: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    invoke_cpu: list[float] = field(default_factory=list)  # ms of sidecar CPU per invocation
    delivery_cpu: list[float] = field(default_factory=list)  # ms of sidecar CPU per event

    def overhead(self, q: float) -> float:
        return percentile(self.hop, q) - percentile(self.direct, q)

    def rows(self) -> dict[str, float]:
        return {
            "invoke hop added, p50 (ms)": self.overhead(50),
            "invoke hop added, p99 (ms)": self.overhead(99),
            "publish -> delivered, p50 (ms)": percentile(self.delivered, 50),
            "publish -> delivered, p99 (ms)": percentile(self.delivered, 99),
            "deliveries/s, trivial handler": sum(self.rates) / len(self.rates),
            "sidecar RSS after the run (MB)": max(self.rss),
            "sidecar CPU per invocation (ms)": sum(self.invoke_cpu) / len(self.invoke_cpu),
            "sidecar CPU per delivered event (ms)": sum(self.delivery_cpu) / len(self.delivery_cpu),
        }


class Sidecars:
    """The two sidecars of one engine: ``bench-app`` (with the app) and ``bench-caller``."""

    def __init__(self, engine: str, app_port: int, resources: Path, work: Path) -> None:
        self.engine, self.app_port, self.resources, self.work = engine, app_port, resources, work
        self.app_http, self.caller_http = free_port(), free_port()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._daprd: list[DaprdSidecar] = []

    @property
    def pids(self) -> tuple[int, int]:
        if self._daprd:
            return tuple(s.pid or 0 for s in self._daprd)  # type: ignore[return-value]
        return self._processes[0].pid, self._processes[1].pid

    async def start(self) -> None:
        if self.engine == "daprd":
            await self._start_daprd()
        else:
            self._start_daca()
            for port in (self.app_http, self.caller_http):
                await wait_ok(f"http://127.0.0.1:{port}/v1.0/healthz")

    def _start_daca(self) -> None:
        daca = [sys.executable, "-m", "daca", "--log-level", "warning", "sidecar"]
        common = ["--resources-path", str(self.resources)]
        env = {**os.environ, "DACA_HOME": str(self.work / "daca-home")}
        for app_id, port, app in (
            ("bench-app", self.app_http, ["--app-port", str(self.app_port)]),
            ("bench-caller", self.caller_http, []),
        ):
            args = [*daca, "--app-id", app_id, "--dapr-http-port", str(port), *app, *common]
            self._processes.append(
                subprocess.Popen(
                    args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )

    async def _start_daprd(self) -> None:
        network = LoopbackNetwork(self.work / "network", ("bench-app", "bench-caller"))
        binary = daprd_path(DAPRD_VERSION)
        for app_id, port, app_port in (
            ("bench-app", self.app_http, self.app_port),
            ("bench-caller", self.caller_http, None),
        ):
            config = SidecarConfig(
                app_id=app_id,
                app_port=app_port,
                http_port=port,
                resources_paths=(self.resources,),
            )
            sidecar = DaprdSidecar(binary, config, network, self.work / "logs")
            await sidecar.start()
            self._daprd.append(sidecar)

    async def stop(self) -> None:
        for sidecar in self._daprd:
            await sidecar.stop()
        for process in self._processes:
            process.send_signal(signal.SIGTERM)
        for process in self._processes:
            process.wait(timeout=15)


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


async def bench_invoke(app: str, sidecars: Sidecars, count: int, figures: Figures) -> None:
    caller = f"http://127.0.0.1:{sidecars.caller_http}"
    async with httpx.AsyncClient() as client:
        await latencies(lambda: client.get(f"{caller}/v1.0/invoke/bench-app/method/ping"), 50)
        figures.direct += await latencies(lambda: client.get(f"{app}/ping"), count)
        before = sum(cpu_seconds(pid) for pid in sidecars.pids)
        figures.hop += await latencies(
            lambda: client.get(f"{caller}/v1.0/invoke/bench-app/method/ping"), count
        )
        used = sum(cpu_seconds(pid) for pid in sidecars.pids) - before
    figures.invoke_cpu.append(used / count * 1000)


async def received_count(client: httpx.AsyncClient, app: str) -> int:
    count: int = (await client.get(f"{app}/received", params={"since": 1 << 30})).json()["count"]
    return count


async def received_item(client: httpx.AsyncClient, app: str, index: int) -> list[float] | None:
    items = (await client.get(f"{app}/received", params={"since": index})).json()["items"]
    return items[0] if items else None


async def bench_publish_latency(app: str, sidecar: str, count: int, figures: Figures) -> None:
    async with httpx.AsyncClient() as client:
        await client.delete(f"{app}/received")
        for n in range(count):
            sent = time.time()
            await client.post(f"{sidecar}/v1.0/publish/pubsub/bench", json={"n": n})
            while (item := await received_item(client, app, n)) is None:
                await asyncio.sleep(0.0005)
            figures.delivered.append((item[1] - sent) * 1000)


async def bench_throughput(
    app: str, sidecars: Sidecars, count: int, figures: Figures, publishers: int = 16
) -> None:
    """``count`` events from 16 concurrent publishers (aiohttp, so the load generator is not the
    bottleneck), timed with the app's own receipt timestamps."""
    url = f"http://127.0.0.1:{sidecars.app_http}/v1.0/publish/pubsub/bench"
    async with httpx.AsyncClient() as client:
        await client.delete(f"{app}/received")
    queue = iter(range(count))
    app_sidecar = sidecars.pids[0]
    before = cpu_seconds(app_sidecar)
    async with aiohttp.ClientSession() as session:

        async def publisher() -> None:
            for n in queue:
                async with session.post(url, json={"n": n}) as answer:
                    assert answer.status == 204, await answer.text()

        start = time.time()
        await asyncio.gather(*(publisher() for _ in range(publishers)))
    async with httpx.AsyncClient() as client:
        while await received_count(client, app) < count:
            await asyncio.sleep(0.05)
        items = (await client.get(f"{app}/received")).json()["items"]
    figures.delivery_cpu.append((cpu_seconds(app_sidecar) - before) / count * 1000)
    figures.rates.append(count / (max(item[1] for item in items) - start))
    figures.rss.append(max(rss_mb(pid) for pid in sidecars.pids))


async def one_round(
    engine: str, app_port: int, resources: Path, work: Path, redis_port: int,
    args: argparse.Namespace, figures: Figures,
) -> None:  # fmt: skip
    redis.Redis(port=redis_port).flushall()
    sidecars = Sidecars(engine, app_port, resources, work)
    await sidecars.start()
    try:
        app, sidecar = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{sidecars.app_http}"
        await bench_invoke(app, sidecars, args.requests, figures)
        await bench_publish_latency(app, sidecar, args.latency_events, figures)
        await bench_throughput(app, sidecars, args.events, figures)
    finally:
        await sidecars.stop()


def report(results: dict[str, Figures], args: argparse.Namespace) -> None:
    daca, daprd = results["daca"].rows(), results["daprd"].rows()
    print(
        f"daca vs daprd {DAPRD_VERSION}, {args.rounds} alternating rounds "
        f"({args.requests} invocations, {args.latency_events} single events, {args.events} "
        f"burst events per round), {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    print(f"{'':<38} {'daca':>10} {'daprd':>10} {'daca/daprd':>11}")
    for name, ours in daca.items():
        theirs = daprd[name]
        ratio = ours / theirs if theirs else float("nan")
        print(f"{name:<38} {ours:10.2f} {theirs:10.2f} {ratio:10.2f}x")


def start_app(port: int) -> subprocess.Popen[bytes]:
    """The trivial app of ``bench_app.py`` on ``port``."""
    here = str(Path(__file__).parent)
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench_app:app", "--port", str(port),
         "--log-level", "warning", "--app-dir", here],
    )  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    if not daprd_path(DAPRD_VERSION).is_file():
        raise SystemExit("daprd is not built: run `.venv/bin/daca dapr install` first")
    with tempfile.TemporaryDirectory() as tmp:
        work, resources = Path(tmp), Path(tmp) / "components"
        resources.mkdir()
        server = BundledRedis(free_port(), work / "redis", persistent=False)
        server.start()
        (resources / "pubsub.yaml").write_text(COMPONENTS.format(redis=server.address))
        app_port = free_port()
        app = start_app(app_port)
        results = {"daca": Figures(), "daprd": Figures()}
        try:
            await wait_ok(f"http://127.0.0.1:{app_port}/ping")
            for number in range(args.rounds):
                order = ("daca", "daprd") if number % 2 == 0 else ("daprd", "daca")
                for engine in order:
                    round_dir = work / f"{engine}-{number}"
                    await one_round(
                        engine, app_port, resources, round_dir, server.port, args, results[engine]
                    )
            report(results, args)
        finally:
            app.terminate()
            app.wait(timeout=15)
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--events", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
