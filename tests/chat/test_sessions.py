"""The routes the chat page uses to switch sessions: a user's sessions, one session's history,
and ``GET /me``."""

from __future__ import annotations

import time

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.chat.conftest import ClientFactory
from tests.chat.fake_sidecar import FakeSidecar, MemoryMode

SECRET = "sessions-test-secret-of-at-least-32-bytes"


def chat(client: TestClient, user: str, session: str, text: str) -> str:
    body = {"user_id": user, "text": text, "metadata": {"session_id": session}}
    answer = client.post("/chat/", json=body)
    assert answer.status_code == 200, answer.text
    reply: str = answer.json()["reply"]
    return reply


def test_a_users_sessions_are_listed_newest_first(client: TestClient, sidecar: FakeSidecar) -> None:
    chat(client, "ana", "a1", "I have a cat.")
    chat(client, "bob", "b1", "Hello.")
    chat(client, "ana", "a2", "I have a dog.")
    answer = client.get("/memories/ana/sessions")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user_id"] == "ana"
    assert [s["session_id"] for s in body["sessions"]] == ["a2", "a1"]
    assert body["sessions"][1]["title"] == "I have a cat."
    assert client.get("/memories/nobody/sessions").json()["sessions"] == []


def test_a_session_history_merges_the_stored_history_with_the_latest_turns(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    """The memory service holds the session's older entries; the newest turn is only in the
    chat's own record (not delivered yet): the history has both, once each, in order."""
    older = [
        {"role": "user", "content": "First.", "timestamp": "2026-01-01T00:00:00+00:00"},
        {"role": "assistant", "content": "Hi.", "timestamp": "2026-01-01T00:00:00+00:00"},
    ]
    sidecar.histories["a1"] = older
    reply = chat(client, "ana", "a1", "Second.")
    answer = client.get("/memories/ana/sessions/a1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [e["content"] for e in body["history"]] == ["First.", "Hi.", "Second.", reply]
    assert body["session_id"] == "a1" and body["total_entries"] == 4
    [call] = [r for r in sidecar.invocations if r.url.path.endswith("/conversations/a1")
              and r.url.params.get("limit") == "200"]  # fmt: skip
    assert call.method == "GET"


def test_another_users_or_an_unknown_session_is_a_404(client: TestClient) -> None:
    chat(client, "ana", "a1", "I have a cat.")
    for path in ("/memories/bob/sessions/a1", "/memories/ana/sessions/nope"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "No session" in answer.json()["detail"]


@pytest.mark.parametrize("mode", ["down", "error", "unreachable", "garbage"])
def test_a_failing_memory_service(
    client: TestClient, sidecar: FakeSidecar, mode: MemoryMode
) -> None:
    """Listing needs the memory service (503); a history falls back to the chat's own record
    of the session's recent turns."""
    reply = chat(client, "ana", "a1", "I have a cat.")
    sidecar.memory_mode = mode
    listing = client.get("/memories/ana/sessions")
    assert listing.status_code == 503
    assert "could not list the sessions" in listing.json()["detail"]
    history = client.get("/memories/ana/sessions/a1")
    assert history.status_code == 200, history.text
    assert [e["content"] for e in history.json()["history"]] == ["I have a cat.", reply]


def test_me_says_the_mode_and_the_tokens_user(make_client: ClientFactory) -> None:
    local = make_client()
    assert local.get("/me").json() == {"mode": "local", "user_id": None}
    production = make_client(access={"DACA_MODE": "production", "AUTH_JWT_SECRET": SECRET})
    assert production.get("/me").status_code == 401
    token = jwt.encode({"sub": "ana", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    me = production.get("/me", headers={"authorization": f"Bearer {token}"})
    assert me.json() == {"mode": "production", "user_id": "ana"}
    # The token's user reads only their own sessions.
    other = production.get("/memories/bob/sessions", headers={"authorization": f"Bearer {token}"})
    assert other.status_code == 403


def test_the_page_is_served(client: TestClient) -> None:
    page = client.get("/ui")
    assert page.status_code == 200 and "<title>daca chat</title>" in page.text
    assert "/ui/assets/app.js" in page.text
    assert client.get("/ui/assets/app.css").status_code == 200
