"""Both services on the daca runtime over a real Redis, with the repository's component files."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from daca.chat.app import create_app as create_chat_app
from daca.chat.settings import ChatSettings
from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app as create_memory_app
from daca.memory.settings import MemorySettings
from daca.memory.summarizer import SummaryWriter
from daca.runtime.config import SidecarConfig
from daca.runtime.redis_server import free_port
from daca.runtime.sidecar import Sidecar
from tests.runtime.harness import running_sidecar, serve

pytestmark = pytest.mark.redis

REPO_COMPONENTS = Path(__file__).resolve().parents[2] / "components"


def copy_components(target: Path, redis_address: str) -> Path:
    """The repository's component files, pointed at the test's Redis."""
    target.mkdir(parents=True, exist_ok=True)
    for source in REPO_COMPONENTS.glob("*.yaml"):
        text = source.read_text().replace("localhost:6379", redis_address)
        (target / source.name).write_text(text)
    return target


@dataclass
class System:
    chat: httpx.AsyncClient
    memory: httpx.AsyncClient
    chat_sidecar: Sidecar
    memory_sidecar: Sidecar
    chat_sidecar_config: SidecarConfig


@contextlib.asynccontextmanager
async def run_system(
    tmp_path: Path, redis_address: str, *, summary_writer: SummaryWriter | None = None
) -> AsyncIterator[System]:
    """Both services and their sidecars; the summary writer defaults to the offline model."""
    resources = copy_components(tmp_path / "components", redis_address)
    memory_dapr, chat_dapr, home = free_port(), free_port(), tmp_path / "home"
    memory_settings = MemorySettings(
        DAPR_HTTP_PORT=memory_dapr,
        SUMMARY_DEBOUNCE_SECONDS=0.2,
        SUMMARY_MAX_DELAY_SECONDS=1.0,
        SUMMARY_RETRY_BASE_SECONDS=0.1,
        SUMMARY_RETRY_MAX_SECONDS=0.5,
    )
    chat_settings = ChatSettings(
        dapr=DaprSettings(DAPR_HTTP_PORT=chat_dapr),
        publish_backoff_initial_seconds=0.05,
        publish_backoff_max_seconds=0.2,
    )
    async with (
        serve(create_memory_app(memory_settings, summary_writer=summary_writer)) as memory_port,
        serve(create_chat_app(chat_settings)) as chat_port,
    ):
        memory_cfg = SidecarConfig(
            app_id="agent-memory-service",
            app_port=memory_port,
            http_port=memory_dapr,
            resources_paths=(resources,),
            home=home,
            bundle_redis=False,
        )
        chat_cfg = SidecarConfig(
            app_id="chat-service",
            app_port=chat_port,
            http_port=chat_dapr,
            resources_paths=(resources,),
            home=home,
            bundle_redis=False,
        )
        async with (
            running_sidecar(memory_cfg) as memory_sidecar,
            running_sidecar(chat_cfg) as chat_sidecar,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{chat_port}", timeout=30) as chat,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{memory_port}", timeout=30) as memory,
        ):
            yield System(chat, memory, chat_sidecar, memory_sidecar, chat_cfg)


@pytest_asyncio.fixture
async def system(tmp_path: Path, redis_url: str) -> AsyncIterator[System]:
    async with run_system(tmp_path, redis_url) as running:
        yield running
