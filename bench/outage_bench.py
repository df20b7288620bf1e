"""Outage benchmark: a burst of chats during an outage of the memory app, its sidecar or Redis.

Run: ``.venv/bin/python bench/outage_bench.py [--outage 300] [--turns 200]`` (``--kinds``
chooses among ``app,sidecar,redis``).
For each kind it starts the system as the integration tests do (both services and both daca
sidecars in this process, the bundled redis-server, the repository's components, the offline
model), takes the part down, sends ``--turns`` chats from 10 concurrent clients, keeps the part
down for ``--outage`` seconds, brings it back and waits until every turn is in the history. It
prints, per kind: turns answered, stored, duplicated, dead-lettered, and the time from the end
of the outage until everything was stored. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from daca.chat.app import create_app as create_chat_app
from daca.chat.settings import ChatSettings
from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app as create_memory_app
from daca.memory.settings import MemorySettings
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from daca.runtime.redis_server import BundledRedis
from daca.runtime.sidecar import Sidecar

ROOT = Path(__file__).resolve().parents[1]


class Server:
    """An ASGI app on a fixed port that can be stopped and started again."""

    def __init__(self, factory: object, port: int) -> None:
        self._factory, self.port = factory, port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        app = self._factory()  # type: ignore[operator]
        config = uvicorn.Config(app, port=self.port, log_level="critical", lifespan="on")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


@dataclass
class System:
    redis: BundledRedis
    memory: Server
    chat: Server
    memory_sidecar: Sidecar
    chat_sidecar: Sidecar


@contextlib.asynccontextmanager
async def system(work: Path) -> AsyncIterator[System]:
    redis = BundledRedis(free_port(), work / "redis", persistent=True)
    redis.start()
    resources = work / "components"
    resources.mkdir()
    for source in (ROOT / "components").glob("*.yaml"):
        text = source.read_text().replace("localhost:6379", redis.address)
        (resources / source.name).write_text(text)
    memory_dapr, chat_dapr = free_port(), free_port()
    memory = Server(
        lambda: create_memory_app(MemorySettings(dapr=DaprSettings(DAPR_HTTP_PORT=memory_dapr))),
        free_port(),
    )
    chat = Server(
        lambda: create_chat_app(ChatSettings(dapr=DaprSettings(DAPR_HTTP_PORT=chat_dapr))),
        free_port(),
    )
    common = {"resources_paths": (resources,), "home": work / "home", "bundle_redis": False}
    memory_sidecar = Sidecar(
        SidecarConfig("agent-memory-service", memory.port, memory_dapr, **common)
    )
    chat_sidecar = Sidecar(SidecarConfig("chat-service", chat.port, chat_dapr, **common))
    await memory.start()
    await chat.start()
    await memory_sidecar.start()
    await chat_sidecar.start()
    try:
        yield System(redis, memory, chat, memory_sidecar, chat_sidecar)
    finally:
        for part in (chat_sidecar, memory_sidecar):
            with contextlib.suppress(Exception):
                await part.stop()
        await chat.stop()
        await memory.stop()
        redis.stop()


async def take_down(parts: System, kind: str) -> None:
    if kind == "app":
        await parts.memory.stop()
    elif kind == "sidecar":
        await parts.memory_sidecar.stop()
    else:
        parts.redis.kill()


async def bring_back(parts: System, kind: str) -> None:
    if kind == "app":
        await parts.memory.start()
    elif kind == "sidecar":
        await parts.memory_sidecar.start()
    else:
        parts.redis.start()


async def chats(parts: System, turns: int) -> int:
    """``turns`` chats from 10 clients, each in its own session; how many were answered."""
    queue = iter(range(turns))
    answered = 0
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{parts.chat.port}", timeout=120
    ) as client:

        async def user() -> None:
            nonlocal answered
            for n in queue:
                body = {"user_id": f"u{n % 10}", "text": f"turn {n}",
                        "metadata": {"session_id": f"s{n}"}}  # fmt: skip
                answer = await client.post("/chat/", json=body)
                answered += answer.status_code == 200

        await asyncio.gather(*(user() for _ in range(10)))
    return answered


async def stored(parts: System, turns: int) -> tuple[int, int]:
    """(turns stored, duplicate entries) over every session."""
    base = f"http://127.0.0.1:{parts.memory.port}"
    found, duplicates = 0, 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for n in range(turns):
            try:
                history = (await client.get(f"/conversations/s{n}")).json()["history"]
            except (httpx.HTTPError, KeyError, ValueError):
                continue
            counts = Counter(e["content"] for e in history if e["role"] == "user")
            found += counts[f"turn {n}"] > 0
            duplicates += max(0, counts[f"turn {n}"] - 1)
    return found, duplicates


async def dead_letters(parts: System) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{parts.memory.port}") as client:
        return int((await client.get("/deadletters")).json()["count"])


async def run(kind: str, args: argparse.Namespace) -> str:
    work = Path(tempfile.mkdtemp(prefix=f"outage-{kind}-"))
    try:
        async with system(work) as parts:
            await take_down(parts, kind)
            answered = await chats(parts, args.turns)
            await asyncio.sleep(args.outage)  # the outage itself
            await bring_back(parts, kind)
            back = time.monotonic()
            deadline = back + args.settle
            while (found := await stored(parts, args.turns))[0] < answered:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            settled = time.monotonic() - back
            dead = await dead_letters(parts)
        return (
            f"{kind:<8} outage {args.outage:>4.0f} s: answered {answered}/{args.turns}, "
            f"stored {found[0]}, duplicated {found[1]}, dead-lettered {dead}, "
            f"settled {settled:.1f} s after recovery"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR)
    print(
        f"outage benchmark: {args.turns} chats during each outage, Python {sys.version.split()[0]}"
    )
    for kind in args.kinds.split(","):
        print(await run(kind, args), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=300.0)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--settle", type=float, default=600.0)
    parser.add_argument("--kinds", default="app,sidecar,redis")
    asyncio.run(main(parser.parse_args()))
