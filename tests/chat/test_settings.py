"""``ChatSettings`` from the environment."""

from __future__ import annotations

import pytest

from daca.chat.settings import ChatSettings


def test_defaults_follow_the_design() -> None:
    settings = ChatSettings()
    assert (settings.memory_app_id, settings.state_store) == (
        "agent-memory-service",
        "chat-statestore",
    )
    assert settings.session_keep_turns == 10
    assert settings.max_message_chars == 4000
    assert settings.dapr.base_url == "http://127.0.0.1:3500"
    assert settings.llm.provider == "offline"


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "100")
    monkeypatch.setenv("CHAT_STATE_STORE", "my-store")
    monkeypatch.setenv("DAPR_HTTP_PORT", "3600")
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    settings = ChatSettings()
    assert (settings.max_message_chars, settings.state_store) == (100, "my-store")
    assert settings.dapr.base_url == "http://127.0.0.1:3600"
    assert settings.llm.provider == "gemini"
