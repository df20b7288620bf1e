"""Builds the Agents SDK ``Model`` the settings select.

Gemini and any OpenAI-compatible endpoint go through ``OpenAIChatCompletionsModel`` over an
``openai.AsyncOpenAI`` client (``daca.llm.client.ChatClient``, with the configured timeout and
retries); with nothing configured the ``OfflineModel`` is used. Building a model disables the
SDK's tracing, so no request ever goes to OpenAI's tracing endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents import Model, OpenAIChatCompletionsModel, set_tracing_disabled
from openai import AsyncOpenAI, DefaultAioHttpClient

from daca.llm.client import ChatClient
from daca.llm.offline import OFFLINE_MODEL_NAME, OfflineModel
from daca.llm.settings import LLMSettings

_NO_KEY = "not-needed"
"""Sent as the API key to endpoints that need none (a local Ollama, for example)."""


@dataclass(frozen=True)
class ModelChoice:
    """The model to run, which provider it talks to, and the client to close."""

    model: Model
    provider: str
    model_name: str
    client: AsyncOpenAI | None = None

    def describe(self) -> str:
        """A one-line description for start-up logs (never contains a secret)."""
        return f"provider={self.provider} model={self.model_name}"

    async def aclose(self) -> None:
        """Close the HTTP client, if the model has one."""
        if self.client is not None:
            await self.client.close()


def _client(settings: LLMSettings, base_url: str, api_key: str | None) -> AsyncOpenAI:
    """An OpenAI client for ``base_url`` with the configured timeout and retries, over
    aiohttp (the SDK's own aiohttp transport: its default, httpx's connection pool, cost more
    CPU per call than the rest of the chat's turn; see ``daca.dapr.transport``)."""
    return ChatClient(
        base_url=base_url,
        api_key=api_key or _NO_KEY,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        http_client=DefaultAioHttpClient(timeout=settings.llm_timeout_seconds),
    )


def _remote(settings: LLMSettings, base_url: str, key: str | None, name: str) -> ModelChoice:
    """A chat-completions model on an OpenAI-compatible endpoint."""
    client = _client(settings, base_url, key)
    model = OpenAIChatCompletionsModel(model=name, openai_client=client)
    return ModelChoice(model=model, provider=settings.provider, model_name=name, client=client)


def build_model(settings: LLMSettings) -> ModelChoice:
    """The model ``settings`` select: OpenAI-compatible endpoint, Gemini, or offline."""
    set_tracing_disabled(True)
    if settings.provider == "openai-compatible":
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return _remote(settings, str(settings.llm_base_url), key, str(settings.llm_model))
    if settings.provider == "gemini" and settings.gemini_api_key is not None:
        key = settings.gemini_api_key.get_secret_value()
        return _remote(settings, settings.gemini_base_url, key, settings.gemini_model)
    return ModelChoice(model=OfflineModel(), provider="offline", model_name=OFFLINE_MODEL_NAME)
