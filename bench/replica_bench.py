"""Memory service replicas sharing one state store: events/s, retries and duplicates.

For each replica count (default 1, 2 and 4) it starts, as separate processes on free loopback
ports: a bundled redis-server, one publishing sidecar (app-id ``chat-service``, no app), and N
memory service replicas (``uvicorn daca.memory.app:create_app``), each with its own daca
sidecar of app-id ``agent-memory-service`` (one consumer group: Redis Streams hand each event to
one of them). It publishes ``--events`` turns of ``--users`` users (one session each) and
reports, once every turn is in its session's history exactly once: the events absorbed per
second, the appends that lost an ETag race to another replica and were tried again, the events
the replicas answered RETRY (an append that lost too often, redelivered), the duplicates they
skipped, and each replica's share. The offline model writes
the summaries.

    .venv/bin/python bench/replica_bench.py [--replicas 1 2 4] [--events 1000] [--users 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from daca.runtime.net import free_port
from daca.runtime.redis_server import BundledRedis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def components(target: Path, redis_address: str) -> Path:
    target.mkdir(parents=True)
    for source in (ROOT / "components").glob("*.yaml"):
        text = source.read_text().replace("localhost:6379", redis_address)
        (target / source.name).write_text(text)
    return target


class Processes:
    """The processes of one run, stopped together."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.running: list[subprocess.Popen[bytes]] = []
        self.log = (home / "processes.log").open("wb")

    def start(self, *command: str, env: dict[str, str] | None = None) -> None:
        environment = {**os.environ, "DACA_HOME": str(self.home), "LOG_LEVEL": "WARNING"}
        process = subprocess.Popen(
            command, env={**environment, **(env or {})}, stdout=self.log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.home,
        )  # fmt: skip
        self.running.append(process)

    def sidecar(self, app_id: str, http_port: int, resources: Path, app_port: int | None) -> None:
        command = [
            str(BIN / "daca"), "--log-level", "warning", "sidecar", "--app-id", app_id,
            "--dapr-http-port", str(http_port), "--resources-path", str(resources),
        ]  # fmt: skip
        if app_port is not None:
            command += ["--app-port", str(app_port)]
        self.start(*command)

    def stop(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()


async def poll(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = await check()
            if found:
                return found
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def event(user: int, turn: int) -> dict[str, Any]:
    return {
        "event_type": "ConversationUpdated", "user_id": f"user{user}",
        "session_id": f"session{user}", "turn_id": f"turn-{turn:05d}",
        "user_message": f"Message {turn} of user {user}.", "assistant_reply": "Noted.",
    }  # fmt: skip


async def run(replicas: int, events: int, users: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="daca-replicas-"))
    redis = BundledRedis(free_port(), home / "redis", persistent=False)
    redis.start()
    processes = Processes(home)
    try:
        resources = components(home / "components", redis.address)
        publisher = free_port()
        processes.sidecar("chat-service", publisher, resources, None)
        apps = []
        for _ in range(replicas):
            app, sidecar = free_port(), free_port()
            processes.start(
                str(BIN / "uvicorn"), "daca.memory.app:create_app", "--factory",
                "--port", str(app), "--log-level", "warning",
                env={"DAPR_HTTP_PORT": str(sidecar), "MEMORY_PAGE_SIZE": "50"},
            )  # fmt: skip
            processes.sidecar("agent-memory-service", sidecar, resources, app)
            apps.append((app, sidecar))
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            for port in [publisher, *(s for _, s in apps)]:
                url = f"http://127.0.0.1:{port}/v1.0/healthz"
                await poll(lambda u=url: _is(client, u, 204), url)
            for app, _ in apps:
                url = f"http://127.0.0.1:{app}/healthz"
                await poll(lambda u=url: _is(client, u, 200), url)
            await _measure(client, replicas, events, users, publisher, [a for a, _ in apps])
    finally:
        processes.stop()
        redis.stop()
        shutil.rmtree(home, ignore_errors=True)


async def _is(client: httpx.AsyncClient, url: str, status: int) -> bool:
    return (await client.get(url)).status_code == status


async def _measure(
    client: httpx.AsyncClient, replicas: int, events: int, users: int, publisher: int,
    apps: list[int],
) -> None:  # fmt: skip
    url = f"http://127.0.0.1:{publisher}/v1.0/publish/pubsub/conversations"
    turns = [(n % users, n) for n in range(events)]
    gate = asyncio.Semaphore(32)

    async def publish(user: int, turn: int) -> None:
        async with gate:
            (await client.post(url, json=event(user, turn))).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(publish(u, t) for u, t in turns))
    published = time.perf_counter() - started

    async def counters() -> list[dict[str, int]]:
        answers = [await client.get(f"http://127.0.0.1:{app}/healthz") for app in apps]
        return [answer.json()["metrics"] for answer in answers]

    async def absorbed() -> list[dict[str, int]] | None:
        found = await counters()
        return found if sum(c["events_handled"] for c in found) >= events else None

    per_replica = await poll(absorbed, "every event handled", timeout=600)
    elapsed = time.perf_counter() - started
    history = f"http://127.0.0.1:{apps[0]}/conversations"
    kept = [
        (await client.get(f"{history}/session{user}")).json()["total_entries"]
        for user in range(users)
    ]
    expected = [2 * sum(1 for u, _ in turns if u == user) for user in range(users)]
    retried = sum(c["events_retried"] for c in per_replica)
    conflicts = sum(c["append_conflicts"] for c in per_replica)
    duplicates = sum(c["duplicates_skipped"] for c in per_replica)
    shares = "/".join(str(c["events_handled"]) for c in per_replica)
    sys.stdout.write(
        f"{replicas} replica(s): {events / elapsed:6.1f} events/s absorbed "
        f"(published in {published:.1f} s, all in history after {elapsed:.1f} s); "
        f"append conflicts {conflicts}, RETRY answers {retried}, duplicates skipped "
        f"{duplicates}; handled per replica "
        f"{shares}; every turn once: {kept == expected}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    for replicas in args.replicas:
        asyncio.run(run(replicas, args.events, args.users))


if __name__ == "__main__":
    main()
