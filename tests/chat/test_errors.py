"""Requests the chat service refuses, and LLM failures (nothing is published then)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daca.llm.settings import LLMSettings
from tests.chat.conftest import ClientFactory
from tests.chat.fake_sidecar import FakeSidecar
from tests.fakes.openai_server import HANG, FakeOpenAIServer, error_reply


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def llm_client(
    make_client: ClientFactory, server: FakeOpenAIServer, **overrides: Any
) -> TestClient:
    llm = LLMSettings(llm_base_url=server.base_url, llm_model="fake", llm_max_retries=0)
    return make_client(offline=False, llm=llm, **overrides)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_message_is_a_400(client: TestClient, text: str) -> None:
    response = client.post("/chat/", json={"user_id": "ana", "text": text})
    assert response.status_code == 400
    assert response.json()["detail"] == "Message text cannot be empty or only whitespace."


def test_a_long_message_is_a_422_naming_the_limit(make_client: ClientFactory) -> None:
    client = make_client(max_message_chars=10)
    response = client.post("/chat/", json={"user_id": "ana", "text": "x" * 11})
    assert response.status_code == 422
    assert "the limit is 10 (MAX_MESSAGE_CHARS)" in response.json()["detail"]


RULE = "1..128 characters: letters, digits and . _ ~ @ + = -, starting with a letter or digit"


@pytest.mark.parametrize("user_id", ["a/b", "", "x" * 129, "a||b", "a\x00b", "x:page:0"])
def test_a_bad_user_id_is_a_422_stating_the_rule(client: TestClient, user_id: str) -> None:
    response = client.post("/chat/", json={"user_id": user_id, "text": "hi"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "user_id"]
    assert RULE in error["msg"]


@pytest.mark.parametrize("session_id", ["a b", "x:page:0", "r/a", ".."])
def test_a_bad_session_id_is_a_422(client: TestClient, session_id: str) -> None:
    body = {"user_id": "ana", "text": "hi", "metadata": {"session_id": session_id}}
    response = client.post("/chat/", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "metadata", "session_id"]


def test_an_llm_failure_is_a_502_and_nothing_is_published(
    make_client: ClientFactory, fake_llm: FakeOpenAIServer, sidecar: FakeSidecar
) -> None:
    fake_llm.enqueue(error_reply(500))
    response = llm_client(make_client, fake_llm).post(
        "/chat/", json={"user_id": "ana", "text": "hi"}
    )
    assert response.status_code == 502
    assert "nothing was stored" in response.json()["detail"]
    assert sidecar.commit_attempts == 0


def test_a_hanging_llm_is_a_504(
    make_client: ClientFactory, fake_llm: FakeOpenAIServer, sidecar: FakeSidecar
) -> None:
    fake_llm.enqueue(HANG)
    client = llm_client(make_client, fake_llm, agent_timeout_seconds=0.3)
    response = client.post("/chat/", json={"user_id": "ana", "text": "hi"})
    assert response.status_code == 504
    assert "did not answer in time" in response.json()["detail"]
    assert sidecar.commit_attempts == 0


def test_the_instructions_reach_the_llm(
    make_client: ClientFactory, fake_llm: FakeOpenAIServer, sidecar: FakeSidecar
) -> None:
    sidecar.users["ana"] = {"name": "Ana", "preferred_style": "formal",
                            "user_summary": "Ana is learning Dapr."}  # fmt: skip
    sidecar.histories["s1"] = [{"role": "user", "content": "I use Redis.",
                                "timestamp": "2025-01-01T10:00:00+00:00"}]  # fmt: skip
    client = llm_client(make_client, fake_llm)
    body = {"user_id": "ana", "text": "What next?", "metadata": {"session_id": "s1"}}
    assert client.post("/chat/", json=body).json()["reply"] == "This is the fake LLM."
    system = fake_llm.requests[0].system_prompt
    assert "User's name: Ana" in system and "Respond in a formal way." in system
    assert "Ana is learning Dapr." in system and "- user: I use Redis." in system
    assert fake_llm.requests[0].messages[-1] == {"role": "user", "content": "What next?"}
    assert client.get("/healthz").json()["model"] == "provider=openai-compatible model=fake"
