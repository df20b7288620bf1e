"""``DELETE /memories/{user_id}`` on the chat service: the memory service forgets, then the chat."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.chat.fake_sidecar import FakeSidecar, MemoryMode


def chat(client: TestClient, user: str, session: str) -> None:
    body = {"user_id": user, "text": "I have a cat.", "metadata": {"session_id": session}}
    assert client.post("/chat/", json=body).status_code == 200


def test_forgetting_deletes_the_users_sessions_and_registration(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    assert client.post("/users", json={"user_id": "ana", "name": "Ana"}).status_code == 202
    for user, session in (("ana", "a1"), ("ana", "a2"), ("bob", "b1")):
        chat(client, user, session)
    sidecar.wait_for_published(4)
    answer = client.delete("/memories/ana")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "forgotten", "user_id": "ana", "sessions": ["a1", "a2"]}
    [call] = [r for r in sidecar.invocations if r.method == "DELETE"]
    assert call.url.path.endswith("/method/memories/ana")
    assert sidecar.keys() == {"session:b1"}
    chat(client, "bob", "a1")  # a forgotten session id is free again


@pytest.mark.parametrize("mode", ["down", "error", "unreachable", "garbage"])
def test_a_failing_memory_service_forgets_nothing_and_says_so(
    client: TestClient, sidecar: FakeSidecar, mode: MemoryMode
) -> None:
    chat(client, "ana", "a1")
    sidecar.memory_mode = mode
    answer = client.delete("/memories/ana")
    assert answer.status_code == 503
    assert "nothing was deleted" in answer.json()["detail"]
    assert sidecar.value("session:a1") is not None


def test_a_bad_user_id_is_a_422(client: TestClient) -> None:
    assert client.delete("/memories/no:colons").status_code == 422


def test_the_users_memory_and_one_fact_can_be_read_and_forgotten(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    when = "2026-01-01T00:00:00+00:00"
    fact = {"fact_id": "f1", "text": "Ana has a cat.", "turn_ids": ["t1"], "session_id": "a1",
            "timestamp": when, "created_at": when}  # fmt: skip
    sidecar.users["ana"] = {"name": "Ana", "user_summary": "Ana has a cat."}
    sidecar.facts["ana"] = [fact]
    memory = client.get("/memories/ana")
    assert memory.status_code == 200, memory.text
    assert memory.json()["user_summary"] == "Ana has a cat."
    assert [f["fact_id"] for f in memory.json()["facts"]] == ["f1"]
    assert client.delete("/memories/ana/facts/f1").status_code == 204
    assert client.get("/memories/ana").json()["facts"] == []
    missing = client.delete("/memories/ana/facts/f1")
    assert missing.status_code == 404 and "f1" in missing.json()["detail"]
    sidecar.memory_mode = "down"
    assert client.get("/memories/ana").status_code == 503
