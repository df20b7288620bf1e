"""``GET /metrics`` on the chat service: turn phases, LLM calls and tokens, the recorder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from daca.llm.settings import LLMSettings
from tests.chat.conftest import ClientFactory
from tests.chat.fake_sidecar import FakeSidecar
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    error_reply,
    text_reply,
    tool_call_reply,
)
from tests.prometheus import Samples, samples, value


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def scrape(client: TestClient) -> Samples:
    """Every sample of ``GET /metrics``, by name and labels."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


def say(client: TestClient, text: str, *, stream: bool = False) -> int:
    body = {"user_id": "ana", "text": text, "metadata": {"session_id": "s1"}}
    if stream:
        with client.stream("POST", "/chat/stream", json=body) as response:
            response.read()
            return response.status_code
    return client.post("/chat/", json=body).status_code


def test_turns_llm_calls_and_tokens_are_counted(
    make_client: ClientFactory, fake_llm: FakeOpenAIServer, sidecar: FakeSidecar
) -> None:
    llm = LLMSettings(llm_base_url=fake_llm.base_url, llm_model="fake", llm_max_retries=0)
    client = make_client(offline=False, llm=llm)
    # A turn with a tool call is two LLM calls; a streamed turn one; a failed one one.
    fake_llm.enqueue(tool_call_reply("get_current_time"), text_reply("It is noon."))
    assert say(client, "What time is it?") == 200
    fake_llm.enqueue(text_reply("Hello, Ana."))
    assert say(client, "Hi", stream=True) == 200
    fake_llm.enqueue(error_reply(500))
    assert say(client, "Again?") == 502
    sidecar.wait_for_published(2)

    found = scrape(client)
    assert value(found, "daca_llm_calls_total", purpose="chat", outcome="ok") == 3
    assert value(found, "daca_llm_calls_total", purpose="chat", outcome="error") == 1
    assert value(found, "daca_llm_call_duration_seconds_count", purpose="chat") == 4
    # The fake server reports 10 prompt and 5 completion tokens a call.
    assert value(found, "daca_llm_tokens_total", purpose="chat", kind="input") == 30
    assert value(found, "daca_llm_tokens_total", purpose="chat", kind="output") == 15
    assert value(found, "daca_chat_turns_total", outcome="answered") == 2
    assert value(found, "daca_chat_turns_total", outcome="failed") == 1
    for phase in ("agent", "publish", "total"):
        assert value(found, "daca_chat_turn_duration_seconds_count", phase=phase) == 2, phase
    # The memory was read for all three, the failed turn included.
    assert value(found, "daca_chat_turn_duration_seconds_count", phase="memory_read") == 3
    total = value(found, "daca_chat_turn_duration_seconds_sum", phase="total")
    agent = value(found, "daca_chat_turn_duration_seconds_sum", phase="agent")
    assert total >= agent > 0
    assert value(found, "daca_chat_recorder_turns_total", outcome="recorded") == 2
    assert value(found, "daca_chat_recorder_pending") == 0


def test_a_turn_waiting_for_the_sidecar_shows_as_pending(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    sidecar.commit_failures = 1_000
    assert say(client, "I have a cat.") == 200
    found = scrape(client)
    assert value(found, "daca_chat_recorder_pending") == 1
    assert value(found, "daca_chat_recorder_turns_total", outcome="recorded") == 0
