"""Both services over a real Redis with the repository's component files, on either engine.

Every test that takes ``system`` runs twice: on daca sidecars and on real daprd sidecars.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from daca.access.settings import AccessSettings
from daca.chat.app import create_app as create_chat_app
from daca.chat.settings import ChatSettings
from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app as create_memory_app
from daca.memory.settings import MemorySettings
from daca.memory.summarizer import SummaryWriter
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from tests.engines import Engine, SidecarHandle
from tests.runtime.harness import serve

pytestmark = pytest.mark.redis

REPO_COMPONENTS = Path(__file__).resolve().parents[2] / "components"


def copy_components(target: Path, redis_address: str) -> Path:
    """The repository's component files, pointed at the test's Redis."""
    target.mkdir(parents=True, exist_ok=True)
    for source in REPO_COMPONENTS.glob("*.yaml"):
        text = source.read_text().replace("localhost:6379", redis_address)
        (target / source.name).write_text(text)
    return target


@dataclass(frozen=True)
class Tokens:
    """``DAPR_API_TOKEN`` (app -> sidecar) and ``APP_API_TOKEN`` (sidecar -> app) for both apps."""

    dapr_api_token: str = "dapr-secret"
    app_api_token: str = "app-secret"


@dataclass
class System:
    engine: Engine
    chat: httpx.AsyncClient
    memory: httpx.AsyncClient
    chat_sidecar: SidecarHandle
    memory_sidecar: SidecarHandle
    tokens: Tokens | None = None

    @property
    def sidecar_headers(self) -> dict[str, str]:
        """Headers for calling a sidecar directly (the API token when one is set)."""
        return {"dapr-api-token": self.tokens.dapr_api_token} if self.tokens else {}


@contextlib.asynccontextmanager
async def run_system(
    tmp_path: Path,
    redis_address: str,
    engine: Engine,
    *,
    summary_writer: SummaryWriter | None = None,
    tokens: Tokens | None = None,
    access: dict[str, str] | None = None,
    memory_env: dict[str, Any] | None = None,
    chat_env: dict[str, Any] | None = None,
) -> AsyncIterator[System]:
    """Both services and their sidecars; the summary writer defaults to the offline model."""
    resources = copy_components(tmp_path / "components", redis_address)
    memory_dapr, chat_dapr, home = free_port(), free_port(), tmp_path / "home"
    token_env = (
        {"DAPR_API_TOKEN": tokens.dapr_api_token, "APP_API_TOKEN": tokens.app_api_token}
        if tokens
        else {}
    )
    # What the memory app's own sidecar sends it; the tests call the app as its sidecar would.
    app_headers = {"dapr-api-token": tokens.app_api_token} if tokens else {}
    access_settings = AccessSettings.model_validate(access or {})
    memory_settings = MemorySettings(
        access=access_settings,
        dapr=DaprSettings(DAPR_HTTP_PORT=memory_dapr, **token_env),
        SUMMARY_DEBOUNCE_SECONDS=0.2,
        SUMMARY_MAX_DELAY_SECONDS=1.0,
        SUMMARY_MIN_INTERVAL_SECONDS=0.0,
        SUMMARY_RETRY_BASE_SECONDS=0.1,
        SUMMARY_RETRY_MAX_SECONDS=0.5,
        **(memory_env or {}),
    )
    chat_settings = ChatSettings(
        access=access_settings,
        dapr=DaprSettings(DAPR_HTTP_PORT=chat_dapr, **token_env),
        publish_backoff_initial_seconds=0.05,
        publish_backoff_max_seconds=0.2,
        **{name.lower(): value for name, value in (chat_env or {}).items()},
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
            api_token=tokens.dapr_api_token if tokens else None,
            app_api_token=tokens.app_api_token if tokens else None,
        )
        chat_cfg = SidecarConfig(
            app_id="chat-service",
            app_port=chat_port,
            http_port=chat_dapr,
            resources_paths=(resources,),
            home=home,
            bundle_redis=False,
            api_token=tokens.dapr_api_token if tokens else None,
            app_api_token=tokens.app_api_token if tokens else None,
        )
        async with (
            engine.sidecar(memory_cfg) as memory_sidecar,
            engine.sidecar(chat_cfg) as chat_sidecar,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{chat_port}", timeout=30) as chat,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{memory_port}", timeout=30, headers=app_headers
            ) as memory,
        ):
            yield System(engine, chat, memory, chat_sidecar, memory_sidecar, tokens)


@pytest_asyncio.fixture
async def system(tmp_path: Path, redis_url: str, engine: Engine) -> AsyncIterator[System]:
    """The system on ``engine`` (both engines, one run each)."""
    async with run_system(tmp_path, redis_url, engine) as running:
        yield running
