"""Memory service settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from daca.memory.settings import MemorySettings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = MemorySettings()
    assert (settings.state_store, settings.pubsub_name, settings.app_id) == (
        "statestore",
        "pubsub",
        "agent-memory-service",
    )
    assert settings.dapr.base_url == "http://127.0.0.1:3500"
    monkeypatch.setenv("STATE_STORE", "other")
    monkeypatch.setenv("MEMORY_PAGE_SIZE", "10")
    monkeypatch.setenv("DAPR_HTTP_PORT", "3501")
    monkeypatch.setenv("SUMMARY_DEBOUNCE_SECONDS", "0.5")
    settings = MemorySettings()
    assert (settings.state_store, settings.page_size) == ("other", 10)
    assert (settings.dapr.base_url, settings.summary_debounce_seconds) == (
        "http://127.0.0.1:3501",
        0.5,
    )


def test_page_size_must_be_even() -> None:
    with pytest.raises(ValidationError):
        MemorySettings(page_size=5)


def test_a_misplaced_setting_is_refused_not_ignored() -> None:
    """The sidecar's settings are nested (``dapr=DaprSettings(...)``), as in the chat's."""
    with pytest.raises(ValidationError, match="APP_API_TOKEN"):
        MemorySettings(APP_API_TOKEN="app-secret")
