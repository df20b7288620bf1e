"""Fixtures of the runtime suites that deliver events: the pub/sub backend under test."""

from __future__ import annotations

import pytest

PUBSUB_BACKENDS = [pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=PUBSUB_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test once per pub/sub backend (Redis marked ``redis``)."""
    name: str = request.param
    return name


@pytest.fixture
def redis_address(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The Redis to point the components at, for the ``redis`` backend."""
    return request.getfixturevalue("redis_url") if backend == "redis" else None
