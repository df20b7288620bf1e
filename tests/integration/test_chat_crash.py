"""A chat process SIGKILLed right after it answers loses no turn (the transactional outbox).

The chat service runs as a real process; the moment a reply arrives it is killed, before it
could do anything more. The turn was committed with its event before the reply was sent, so the
sidecar still publishes it and the memory service stores it. On both engines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app as create_memory_app
from daca.memory.settings import MemorySettings
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from tests.engines import Engine
from tests.integration.conftest import copy_components
from tests.integration.helpers import eventually
from tests.runtime.harness import serve

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def start_chat(port: int, sidecar_port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DAPR_HTTP_PORT": str(sidecar_port), "LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "uvicorn", "daca.chat.app:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with (tmp_path / "chat.log").open("wb") as log:
        return subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )


async def test_a_chat_killed_right_after_answering_loses_no_turn(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    resources = copy_components(tmp_path / "components", redis_url)
    chat_port, chat_dapr, memory_dapr = free_port(), free_port(), free_port()
    common = {"resources_paths": (resources,), "home": tmp_path / "home", "bundle_redis": False}
    chat = start_chat(chat_port, chat_dapr, tmp_path)
    try:
        settings = MemorySettings(dapr=DaprSettings(DAPR_HTTP_PORT=memory_dapr))
        async with serve(create_memory_app(settings)) as memory_port:
            memory_cfg = SidecarConfig("agent-memory-service", memory_port, memory_dapr, **common)
            chat_cfg = SidecarConfig("chat-service", chat_port, chat_dapr, **common)
            async with (
                engine.sidecar(memory_cfg),
                engine.sidecar(chat_cfg),
                httpx.AsyncClient(timeout=30) as client,
            ):
                body = {"user_id": "kim", "text": "Remember: my locker is 17.",
                        "metadata": {"session_id": "crash"}}  # fmt: skip
                answer = await client.post(f"http://127.0.0.1:{chat_port}/chat/", json=body)
                chat.send_signal(signal.SIGKILL)  # nothing after the reply may run
                assert answer.status_code == 200, answer.text
                chat.wait()

                async def stored() -> list[dict[str, str]] | None:
                    url = f"http://127.0.0.1:{memory_port}/conversations/crash"
                    entries: list[dict[str, str]] = (await client.get(url)).json()["history"]
                    return entries or None

                entries = await eventually(stored, timeout=30)
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
    assert entries[0]["content"] == "Remember: my locker is 17."
    assert len(entries) == 2
