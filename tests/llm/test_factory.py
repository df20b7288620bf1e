"""``build_model``: which model each provider gets, and what the start-up line says."""

from __future__ import annotations

from agents import OpenAIChatCompletionsModel

from daca.llm.factory import build_model
from daca.llm.offline import OfflineModel
from daca.llm.settings import LLMSettings


async def test_offline_when_nothing_is_configured() -> None:
    choice = build_model(LLMSettings())
    assert isinstance(choice.model, OfflineModel)
    assert choice.describe() == "provider=offline model=daca-offline"
    await choice.aclose()


async def test_gemini_uses_its_openai_compatible_endpoint() -> None:
    settings = LLMSettings(gemini_api_key="g-secret", llm_timeout_seconds=3, llm_max_retries=1)
    choice = build_model(settings)
    assert isinstance(choice.model, OpenAIChatCompletionsModel)
    assert choice.client is not None
    assert str(choice.client.base_url).startswith("https://generativelanguage.googleapis.com/")
    assert (choice.client.timeout, choice.client.max_retries) == (3, 1)
    assert choice.describe() == "provider=gemini model=gemini-2.0-flash"
    assert "g-secret" not in choice.describe()
    await choice.aclose()


async def test_an_openai_compatible_endpoint_needs_no_key() -> None:
    settings = LLMSettings(llm_base_url="http://127.0.0.1:9/v1", llm_model="llama3.2")
    choice = build_model(settings)
    assert choice.client is not None
    assert str(choice.client.base_url) == "http://127.0.0.1:9/v1/"
    assert choice.describe() == "provider=openai-compatible model=llama3.2"
    await choice.aclose()
