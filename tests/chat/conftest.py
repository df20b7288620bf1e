"""Fixtures of the chat service's tests: the app over a fake sidecar and the offline model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daca.chat.app import create_app
from daca.chat.settings import ChatSettings
from daca.llm.offline import OfflineModel
from tests.chat.fake_sidecar import FakeSidecar
from tests.local import LOCAL

ClientFactory = Callable[..., TestClient]


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from an empty directory, so no developer ``.env`` leaks into the settings."""
    monkeypatch.chdir(tmp_path)


def chat_settings(**overrides: Any) -> ChatSettings:
    """Settings with fast retries and short timeouts for tests."""
    values: dict[str, Any] = {
        "publish_backoff_initial_seconds": 0.01,
        "publish_backoff_max_seconds": 0.05,
        "memory_timeout_seconds": 0.5,
        "shutdown_flush_seconds": 0.2,
    }
    return ChatSettings.model_validate({**values, **overrides})


@pytest.fixture
def sidecar() -> Iterator[FakeSidecar]:
    """The fake sidecar (memory service up, transactions accepted), stopped after the test."""
    fake = FakeSidecar()
    yield fake
    fake.close()


@pytest.fixture
def make_client(sidecar: FakeSidecar) -> Iterator[ClientFactory]:
    """Builds started test clients (offline model unless settings select another)."""
    stack: list[TestClient] = []

    def factory(offline: bool = True, **overrides: Any) -> TestClient:
        model = OfflineModel() if offline else None
        app = create_app(chat_settings(**overrides), model=model, dapr_transport=sidecar.transport)
        client = TestClient(app, **LOCAL)
        stack.append(client)
        return client.__enter__()

    yield factory
    for client in reversed(stack):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """A started client with default test settings."""
    return make_client()
