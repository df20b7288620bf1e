"""Fixtures of the memory service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import FakeWriter, running_app


@pytest.fixture
def sidecar() -> FakeSidecar:
    """A fresh in-process sidecar: the runtime's API over in-memory components."""
    return FakeSidecar()


@pytest.fixture
def writer() -> FakeWriter:
    """A summary writer that always succeeds."""
    return FakeWriter()


@pytest.fixture
async def client(sidecar: FakeSidecar, writer: FakeWriter) -> AsyncIterator[httpx.AsyncClient]:
    """The memory app on the in-process sidecar, with the test settings."""
    async with running_app(sidecar, writer) as client:
        yield client
