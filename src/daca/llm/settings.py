"""Provider settings for the LLM, read from the environment and ``.env``.

Provider selection (``LLMSettings.provider``), most specific first:

1. ``LLM_BASE_URL`` and ``LLM_MODEL`` (with optional ``LLM_API_KEY``): any OpenAI-compatible
   endpoint (OpenAI, Ollama, vLLM, ...). An explicit endpoint wins over a Gemini key, so a
   developer whose ``.env`` holds ``GEMINI_API_KEY`` can still point the services elsewhere.
2. ``GEMINI_API_KEY``: Gemini through its OpenAI-compatible endpoint (``GEMINI_MODEL``,
   ``GEMINI_BASE_URL``).
3. Nothing set: the deterministic offline model.

Setting only one of ``LLM_BASE_URL`` and ``LLM_MODEL`` is a configuration error, not a silent
fallback to the offline model.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GEMINI_OPENAI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
"""Gemini's OpenAI-compatible endpoint (the default of ``GEMINI_BASE_URL``)."""

Provider = Literal["gemini", "openai-compatible", "offline"]


class LLMSettings(BaseSettings):
    """Which LLM to use and how to reach it. Secrets are ``SecretStr`` and never logged."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    gemini_api_key: SecretStr | None = None
    gemini_model: str = Field(default="gemini-2.0-flash", min_length=1)
    gemini_base_url: str = Field(default=GEMINI_OPENAI_BASE_URL, min_length=1)
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _endpoint_is_complete(self) -> Self:
        """``LLM_BASE_URL`` and ``LLM_MODEL`` come as a pair."""
        if bool(self.llm_base_url) != bool(self.llm_model):
            raise ValueError("LLM_BASE_URL and LLM_MODEL must be set together")
        return self

    @property
    def provider(self) -> Provider:
        """The provider these settings select (see the module docstring for the order)."""
        if self.llm_base_url and self.llm_model:
            return "openai-compatible"
        if self.gemini_api_key is not None and self.gemini_api_key.get_secret_value():
            return "gemini"
        return "offline"
