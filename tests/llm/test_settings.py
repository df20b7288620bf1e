"""Provider selection and secret handling of ``LLMSettings``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from daca.llm.settings import GEMINI_OPENAI_BASE_URL, LLMSettings


def test_nothing_configured_selects_the_offline_model() -> None:
    assert LLMSettings().provider == "offline"


def test_a_gemini_key_selects_gemini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    settings = LLMSettings()
    assert settings.provider == "gemini"
    assert settings.gemini_model == "gemini-2.0-flash"
    assert settings.gemini_base_url == GEMINI_OPENAI_BASE_URL


def test_an_explicit_endpoint_wins_over_a_gemini_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("LLM_MODEL", "llama3.2")
    assert LLMSettings().provider == "openai-compatible"


def test_an_empty_gemini_key_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "")
    assert LLMSettings().provider == "offline"


@pytest.mark.parametrize("name", ["LLM_BASE_URL", "LLM_MODEL"])
def test_half_an_endpoint_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "x")
    with pytest.raises(ValidationError, match="LLM_BASE_URL and LLM_MODEL must be set together"):
        LLMSettings()


def test_timeouts_and_retries_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    settings = LLMSettings()
    assert (settings.llm_timeout_seconds, settings.llm_max_retries) == (2.5, 0)


def test_dotenv_is_read_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GEMINI_API_KEY=from-dotenv\n")
    assert LLMSettings().provider == "gemini"


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret")
    monkeypatch.setenv("LLM_API_KEY", "l-secret")
    rendered = f"{LLMSettings()!r} {LLMSettings()}"
    assert "g-secret" not in rendered
    assert "l-secret" not in rendered
