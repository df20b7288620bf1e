"""Fixtures for the HTTP API conformance tests: one sidecar per backend, driven over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from daca.runtime.config import SidecarConfig
from tests.engines import Engine
from tests.runtime.harness import BACKENDS, write_components


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "redis":
        request.applymarker(pytest.mark.redis)
    return name


@pytest.fixture
def resources(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    address = request.getfixturevalue("redis_url") if backend == "redis" else None
    return write_components(tmp_path / "components", backend, redis_address=address)


@pytest_asyncio.fixture
async def dapr(engine: Engine, resources: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for a sidecar (app-id ``myapp``, no app) over ``resources``, per engine."""
    config = SidecarConfig(
        app_id="myapp",
        http_port=0,
        resources_paths=(resources,),
        home=tmp_path / "home",
        bundle_redis=False,
    )
    async with engine.sidecar(config) as sidecar:
        base = f"http://127.0.0.1:{sidecar.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            yield client
