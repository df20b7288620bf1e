"""A memory-service outage longer than the old retry window loses nothing and needs no hand.

The memory app is stopped, a burst of turns is published, and it comes back after 40 s (the
first policy dead-lettered in-flight turns after about 25 s). Every turn must then be stored
exactly once, with no dead letter, on both engines, with the repository's own components.
Dead letters can be replayed idempotently (``POST /deadletters/replay``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app
from daca.memory.settings import MemorySettings
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from tests.engines import Engine
from tests.integration.conftest import System, copy_components
from tests.integration.helpers import eventually, history, publish, turn_event

pytestmark = pytest.mark.redis

OUTAGE_SECONDS = 40
TURNS = 30


class MemoryApp:
    """The memory service on a fixed port, stopped and started again like a crashed process."""

    def __init__(self, port: int, sidecar_port: int) -> None:
        self.port, self.sidecar_port = port, sidecar_port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = MemorySettings(
            dapr=DaprSettings(DAPR_HTTP_PORT=self.sidecar_port), SUMMARY_DEBOUNCE_SECONDS=0.2
        )
        app = create_app(settings)
        config = uvicorn.Config(app, port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_long_memory_outage_loses_no_turn(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    resources = copy_components(tmp_path / "components", redis_url)
    app_port, memory_dapr, chat_dapr = free_port(), free_port(), free_port()
    common: dict[str, Any] = {
        "resources_paths": (resources,),
        "home": tmp_path / "home",
        "bundle_redis": False,
    }
    memory_cfg = SidecarConfig("agent-memory-service", app_port, memory_dapr, **common)
    chat_cfg = SidecarConfig("chat-service", None, chat_dapr, **common)  # publishes only
    session, app = "outage", MemoryApp(app_port, memory_dapr)
    await app.start()
    try:
        async with (
            engine.sidecar(memory_cfg) as memory_sidecar,
            engine.sidecar(chat_cfg) as chat_sidecar,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}", timeout=30) as memory,
        ):
            system = System(engine, memory, memory, chat_sidecar, memory_sidecar)
            await publish(system, turn_event(session, 0))
            await eventually(lambda: _count(system, session, 2))
            await app.stop()  # the memory app is down; its sidecar keeps delivering, and failing
            started = time.monotonic()
            burst = (publish(system, turn_event(session, n)) for n in range(1, TURNS))
            await asyncio.gather(*burst)
            await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a server
            await app.start()
            entries = await eventually(lambda: _count(system, session, 2 * TURNS), timeout=120)
            settled = time.monotonic() - started
            dead = (await memory.get("/deadletters")).json()["events"]
    finally:
        await app.stop()
    questions = sorted(e["content"] for e in entries if e["role"] == "user")
    assert questions == sorted(f"question {n}" for n in range(TURNS))
    assert len(entries) == 2 * TURNS
    assert dead == []
    assert settled < OUTAGE_SECONDS + 60


async def _count(system: System, session: str, count: int) -> list[dict[str, Any]] | None:
    try:
        entries = await history(system, session)
    except httpx.HTTPError:
        return None
    return entries if len(entries) >= count else None
