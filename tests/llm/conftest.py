"""Fixtures of the LLM layer's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from an empty directory, so no developer ``.env`` leaks into the settings."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server on a free loopback port."""
    with FakeOpenAIServer() as server:
        yield server
