"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from daca.realdapr.daprd import LoopbackNetwork
from daca.runtime.net import free_port
from daca.runtime.redis_server import BundledRedis
from tests.engines import (
    APP_IDS,
    ENGINES,
    DacaEngine,
    DaprdEngine,
    Engine,
    daprd_version,
    find_daprd,
)

# Property tests are deterministic (same examples every run) and not timed: a slow, shared CI
# machine must not turn them into flakes.
settings.register_profile("daca", derandomize=True, deadline=None, max_examples=200)
settings.load_profile("daca")

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


# --- the daprd layer -----------------------------------------------------------------------------

_DAPRD_KEY = pytest.StashKey[Path | None]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_DAPRD_KEY] = find_daprd()


def pytest_report_header(config: pytest.Config) -> str:
    binary = config.stash.get(_DAPRD_KEY, None)
    if binary is not None:
        return f"daprd: {binary} ({daprd_version(binary)})"
    return _DAPRD_MISSING


_DAPRD_MISSING = (
    "daprd: NOT FOUND - every test marked `daprd` is SKIPPED. Build it with "
    "`.venv/bin/daca dapr install` (needs Go >= 1.26; `bash scripts/test` does it when Go is "
    "installed) or point DACA_DAPRD at a daprd binary."
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The daprd runs of engine-parametrised tests carry the marker already at collection, so
    # `-m "not daprd"` deselects them (the fixture's own applymarker comes too late for that).
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("engine_name") == "daprd":
            item.add_marker(pytest.mark.daprd)
    if config.stash.get(_DAPRD_KEY, None) is not None:
        return
    if os.environ.get("DACA_REQUIRE_DAPRD"):
        raise pytest.UsageError(_DAPRD_MISSING.replace("SKIPPED", "required (DACA_REQUIRE_DAPRD)"))
    skip = pytest.mark.skip(reason="daprd not built (see the report header)")
    for item in items:
        if "daprd" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def daprd_binary(request: pytest.FixtureRequest) -> Path:
    binary = request.config.stash.get(_DAPRD_KEY, None)
    if binary is None:
        pytest.skip("daprd not built")
    return binary


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "daprd":
        request.applymarker(pytest.mark.daprd)
    return name


@pytest.fixture
def engine(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """The engine this run of the test uses for its sidecars (see ``tests/engines``)."""
    if engine_name == "daca":
        return DacaEngine()
    binary: Path = request.getfixturevalue("daprd_binary")
    network = LoopbackNetwork(tmp_path / "daprd-network", APP_IDS)
    return DaprdEngine(binary, network, tmp_path / "daprd-logs")
