"""``POST /chat/``: answers, personalisation, memory failures, the recorded and published turn."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.chat.conftest import ClientFactory
from tests.chat.fake_sidecar import FakeSidecar, MemoryMode

HEX_ID = re.compile(r"^[0-9a-f]{32}$")
TS = "2025-01-01T10:00:00+00:00"


def say(client: TestClient, text: str, session_id: str | None = None, **extra: Any) -> Any:
    metadata = {"session_id": session_id} if session_id else None
    body = {"user_id": "ana", "text": text, "metadata": metadata, "tags": [], **extra}
    return client.post("/chat/", json=body)


def test_root_and_healthz(client: TestClient) -> None:
    assert "Welcome" in client.get("/").json()["message"]
    health = client.get("/healthz").json()
    assert health["model"] == "provider=injected model=OfflineModel"
    assert health["recorder"] == {"pending": 0, "recorded": 0, "retried": 0, "failed": 0,
                                  "dropped": 0}  # fmt: skip


def test_a_turn_is_answered_and_published_once(client: TestClient, sidecar: FakeSidecar) -> None:
    response = say(client, "Hello there")
    assert response.status_code == 200
    body = response.json()
    session_id = body["metadata"]["session_id"]
    assert HEX_ID.match(session_id)
    [published] = sidecar.wait_for_published(1)
    assert (published.pubsub, published.topic) == ("pubsub", "conversations")
    event = published.data
    assert event["event_type"] == "ConversationUpdated"
    assert HEX_ID.match(event["turn_id"])
    assert (event["user_id"], event["session_id"]) == ("ana", session_id)
    assert (event["user_message"], event["assistant_reply"]) == ("Hello there", body["reply"])
    assert client.get("/healthz").json()["recorder"]["recorded"] == 1
    # The turn is stored in the chat's own state with the session's owner.
    record = sidecar.value(f"session:{session_id}")
    assert record["user_id"] == "ana"
    assert [t["turn_id"] for t in record["turns"]] == [event["turn_id"]]


def test_the_next_message_sees_the_previous_turn_at_once(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    """Read-your-writes: the memory service has nothing yet (pub/sub is still on its way), the
    chat's own record of the session has the turn."""
    assert say(client, "I am planning to go to SF tomorrow.", session_id="rw").status_code == 200
    assert sidecar.histories.get("rw") is None
    reply = say(client, "Where was I planning to go tomorrow?", session_id="rw").json()["reply"]
    assert "SF" in reply


def test_another_users_session_is_not_found(client: TestClient, sidecar: FakeSidecar) -> None:
    assert say(client, "My bank PIN is 4242.", session_id="private").status_code == 200
    intruder = client.post(
        "/chat/",
        json={"user_id": "eve", "text": "What did I say?", "metadata": {"session_id": "private"}},
    )
    assert intruder.status_code == 404
    assert intruder.json() == {"detail": "No session 'private' for user 'eve'."}
    # Nothing was appended to the session: no second transaction, one event.
    assert sidecar.commit_attempts == 1
    assert len(sidecar.wait_for_published(1)) == 1


def test_the_session_id_is_kept_and_history_is_read_with_the_limit(
    make_client: ClientFactory, sidecar: FakeSidecar
) -> None:
    client = make_client(history_limit=7)
    response = say(client, "Hi again", session_id="s-42")
    assert response.json()["metadata"]["session_id"] == "s-42"
    [read] = sidecar.invocations  # one read of what the memory service knows
    assert read.url.path == "/v1.0/invoke/agent-memory-service/method/memories/ana/context"
    assert (read.url.params["session_id"], read.url.params["limit"]) == ("s-42", "7")
    assert (read.url.params["q"], read.url.params["k"]) == ("Hi again", "5")
    assert sidecar.wait_for_published(1)[0].data["session_id"] == "s-42"


def test_the_reply_uses_name_and_style(client: TestClient, sidecar: FakeSidecar) -> None:
    sidecar.users["ana"] = {"name": "Ana", "preferred_style": "casual", "user_summary": None}
    assert say(client, "Tell me a story").json()["reply"].startswith("Hey, Ana!")


def test_the_reply_uses_the_session_history(client: TestClient, sidecar: FakeSidecar) -> None:
    sidecar.histories["s1"] = [
        {"role": "user", "content": "I'm planning to go to SF tomorrow.", "timestamp": TS},
        {"role": "assistant", "content": "Sounds fun!", "timestamp": TS},
    ]
    reply = say(client, "Where was I planning to go tomorrow?", session_id="s1").json()["reply"]
    assert "SF" in reply


def test_the_reply_uses_the_user_summary(client: TestClient, sidecar: FakeSidecar) -> None:
    sidecar.users["ana"] = {"user_summary": "My favourite city is Lisbon."}
    assert "Lisbon" in say(client, "What is my favourite city?").json()["reply"]


def test_memory_reads_run_concurrently(client: TestClient, sidecar: FakeSidecar) -> None:
    sidecar.require_concurrent_reads = True
    sidecar.users["ana"] = {"name": "Ana", "preferred_style": "formal"}
    assert say(client, "Good morning").json()["reply"].startswith("Good day, Ana!")


@pytest.mark.parametrize("mode", ["down", "error", "hang", "unreachable", "garbage"])
def test_without_the_memory_service_the_user_is_treated_as_new(
    client: TestClient, sidecar: FakeSidecar, mode: MemoryMode, caplog: pytest.LogCaptureFixture
) -> None:
    sidecar.users["ana"] = {"name": "Ana"}
    sidecar.memory_mode = mode
    response = say(client, "Hello")
    assert response.status_code == 200
    assert response.json()["reply"].startswith("Hello!")
    assert "Memory context for ana unavailable" in caplog.text
    assert len(sidecar.wait_for_published(1)) == 1
