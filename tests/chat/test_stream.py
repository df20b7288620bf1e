"""``POST /chat/stream``: the reply as Server-Sent Events, recorded once it is complete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daca.llm.settings import LLMSettings
from tests.chat.conftest import ClientFactory
from tests.chat.fake_sidecar import FakeSidecar
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply, error_reply, text_reply

Event = tuple[str, dict[str, Any]]


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def llm_client(make_client: ClientFactory, server: FakeOpenAIServer) -> TestClient:
    llm = LLMSettings(llm_base_url=server.base_url, llm_model="fake", llm_max_retries=0)
    return make_client(offline=False, llm=llm)


def parse(body: str) -> list[Event]:
    """The SSE events of ``body``: each ``event:`` line with its ``data:`` JSON."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def stream(client: TestClient, text: str, session: str = "s1") -> list[Event]:
    body = {"user_id": "ana", "text": text, "metadata": {"session_id": session}}
    with client.stream("POST", "/chat/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse(response.read().decode())


def test_the_offline_reply_streams_word_by_word_then_done(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    events = stream(client, "Hello there")
    names = [name for name, _ in events]
    assert names[0] == "memories" and names[-1] == "done"
    deltas = [data["text"] for name, data in events if name == "delta"]
    done = events[-1][1]
    assert len(deltas) > 3 and "".join(deltas) == done["reply"]
    assert (done["user_id"], done["metadata"]["session_id"]) == ("ana", "s1")
    [published] = sidecar.wait_for_published(1)
    assert published.data["assistant_reply"] == done["reply"]


def test_tool_calls_are_streamed_as_they_happen(client: TestClient) -> None:
    events = stream(client, "What time is it?")
    names = [name for name, _ in events]
    assert names.index("tool_call") < names.index("tool_output") < names.index("delta")
    [call] = [data for name, data in events if name == "tool_call"]
    assert call["name"] == "get_current_time"
    assert "UTC" in events[-1][1]["reply"]


def test_a_real_model_streams_its_chunks(
    make_client: ClientFactory, fake_llm: FakeOpenAIServer, sidecar: FakeSidecar
) -> None:
    fake_llm.enqueue(text_reply("Hello there, Ana!"))
    events = stream(llm_client(make_client, fake_llm), "Hi")
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert deltas == ["Hello", " there,", " Ana!"]
    assert events[-1] == ("done", events[-1][1]) and events[-1][1]["reply"] == "Hello there, Ana!"
    assert fake_llm.requests[0].body["stream"] is True
    assert len(sidecar.wait_for_published(1)) == 1


def test_a_model_failure_mid_stream_is_an_error_event_and_records_nothing(
    make_client: ClientFactory, fake_llm: FakeOpenAIServer, sidecar: FakeSidecar
) -> None:
    fake_llm.enqueue(error_reply(500))
    events = stream(llm_client(make_client, fake_llm), "Hi")
    assert events[-1][0] == "error"
    assert events[-1][1]["status"] == 502
    assert sidecar.published == [] and sidecar.commit_attempts == 0


def test_a_refused_turn_gets_its_status_before_any_event(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    bobs = {"user_id": "bob", "text": "hi", "metadata": {"session_id": "b1"}}
    assert client.post("/chat/", json=bobs).status_code == 200
    sidecar.wait_for_published(1)
    body = {"user_id": "ana", "text": "hi", "metadata": {"session_id": "b1"}}
    refused = client.post("/chat/stream", json=body)
    assert refused.status_code == 404
    assert client.post("/chat/stream", json={"user_id": "ana", "text": " "}).status_code == 400


def test_a_client_that_leaves_mid_stream_leaves_no_turn(
    make_client: ClientFactory, fake_llm: FakeOpenAIServer, sidecar: FakeSidecar
) -> None:
    stalled = text_reply("One two three four five six")
    fake_llm.enqueue(FakeReply(body=stalled.body, stall_after=3))
    client = llm_client(make_client, fake_llm)
    body = {"user_id": "ana", "text": "Hi", "metadata": {"session_id": "s1"}}
    with client.stream("POST", "/chat/stream", json=body) as response:
        lines = response.iter_lines()
        seen = [line for line, _ in zip(lines, range(6), strict=False)]
    assert any(line.startswith("event: delta") for line in seen)
    fake_llm.release_stalls()  # the model finishes: had the turn gone on, it would be recorded
    fake_llm.enqueue(text_reply("Second answer."))
    events = stream(client, "Again", session="s2")
    assert events[-1][1]["reply"] == "Second answer."
    [published] = sidecar.wait_for_published(1)
    assert published.data["session_id"] == "s2"
    assert sidecar.commit_attempts == 1
