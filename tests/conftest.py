"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from daca.runtime.redis_server import BundledRedis, free_port

_CLEARED_PREFIXES = ("DAPR_", "APP_", "LLM_", "GEMINI_", "OPENAI_", "DACA_")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's Dapr, LLM or daca settings."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DACA_HOME", str(tmp_path / "daca-home"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BundledRedis]:
    """A real redis-server (the bundled one) on a free loopback port, for the whole session."""
    server = BundledRedis(free_port(), tmp_path_factory.mktemp("redis"), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: BundledRedis) -> Iterator[str]:
    """The session's Redis, flushed before each test that uses it."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    client.flushall()
    client.close()
    yield redis_server.address
