"""The recorder: a turn that cannot be recorded still answers, is retried, counted, and never
silently lost."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from daca.chat.app import create_app
from daca.llm.offline import OfflineModel
from tests.chat.conftest import ClientFactory, chat_settings
from tests.chat.fake_sidecar import FakeSidecar
from tests.local import LOCAL


def say(client: TestClient, text: str) -> dict[str, object]:
    response = client.post("/chat/", json={"user_id": "ana", "text": text})
    assert response.status_code == 200
    return dict(response.json())


def test_a_failed_commit_is_retried_until_it_succeeds(
    client: TestClient, sidecar: FakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    sidecar.commit_failures = 3
    body = say(client, "Hello")
    [published] = sidecar.wait_for_published(1)
    assert published.data["assistant_reply"] == body["reply"]
    turn_id = published.data["turn_id"]
    stats = client.get("/healthz").json()["recorder"]
    assert stats == {"pending": 0, "recorded": 1, "retried": 3, "failed": 3, "dropped": 0}
    failures = [
        r for r in caplog.records if "failed" in r.getMessage() and turn_id in r.getMessage()
    ]
    assert len(failures) == 3


def test_a_turn_reads_its_session_once(client: TestClient, sidecar: FakeSidecar) -> None:
    """The session record read for the reply guards the turn's transaction: no second read."""
    first = say(client, "Hello")
    session = first["metadata"]["session_id"]  # type: ignore[index]
    created = list(sidecar.state_requests)
    sidecar.state_requests.clear()
    second = client.post(
        "/chat/", json={"user_id": "ana", "text": "again", "metadata": {"session_id": session}}
    )
    assert second.status_code == 200
    sidecar.wait_for_published(2)
    assert sidecar.state_requests == [f"GET /session:{session}", "POST /transaction"]
    # A new session: read (missing), created first-write, read again, then the transaction.
    assert created == [
        f"GET /session:{session}",
        "POST ",
        f"GET /session:{session}",
        "POST /transaction",
    ]


def test_a_conflicting_turn_is_retried_from_a_fresh_read(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    """Another writer changed the session between the turn's read and its transaction."""
    first = say(client, "Hello")
    session = str(first["metadata"]["session_id"])  # type: ignore[index]
    key = f"session:{session}"
    value = sidecar.value(key)
    sidecar.on_state_read = lambda: sidecar.put(key, value)  # the same value, a new ETag
    second = client.post(
        "/chat/", json={"user_id": "ana", "text": "again", "metadata": {"session_id": session}}
    )
    assert second.status_code == 200
    [_, published] = sidecar.wait_for_published(2)
    assert published.data["user_message"] == "again"
    assert sidecar.commit_attempts == 3  # the first turn's, the refused one, the retry
    stored = sidecar.value(key)
    assert [t["user_message"] for t in stored["turns"]] == ["Hello", "again"]


def test_turns_are_recorded_in_order_while_the_queue_drains(
    client: TestClient, sidecar: FakeSidecar
) -> None:
    sidecar.commit_failures = 2
    say(client, "first")
    say(client, "second")
    published = sidecar.wait_for_published(2)
    assert [event.data["user_message"] for event in published] == ["first", "second"]


def test_a_full_queue_refuses_new_turns(make_client: ClientFactory, sidecar: FakeSidecar) -> None:
    sidecar.commit_failures = -1
    client = make_client(outbox_max_events=1)
    say(client, "first")
    refused = client.post("/chat/", json={"user_id": "ana", "text": "second"})
    assert refused.status_code == 503
    assert "try again" in refused.json()["detail"]
    assert client.get("/healthz").json()["recorder"]["pending"] == 1


def test_unrecorded_turns_are_reported_at_shutdown(
    sidecar: FakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    sidecar.commit_failures = -1
    app = create_app(chat_settings(), model=OfflineModel(), dapr_transport=sidecar.transport)
    with TestClient(app, **LOCAL) as client:
        say(client, "Hello")
        health = client.get("/healthz").json()["recorder"]
    assert health["pending"] == 1
    [report] = [r for r in caplog.records if "left unrecorded at shutdown" in r.getMessage()]
    assert report.levelno == logging.ERROR
    first_failure = next(r for r in caplog.records if r.getMessage().startswith("Recording"))
    item = str(first_failure.args[0])  # type: ignore[index]
    assert item.startswith("turn ") and item in report.getMessage()
    assert sidecar.commit_attempts >= 2
    assert not sidecar.published


def test_the_queue_flushes_at_shutdown(sidecar: FakeSidecar) -> None:
    sidecar.commit_failures = 1
    settings = chat_settings(publish_backoff_initial_seconds=60, shutdown_flush_seconds=5)
    app = create_app(settings, model=OfflineModel(), dapr_transport=sidecar.transport)
    with TestClient(app, **LOCAL) as client:
        say(client, "Hello")
    # The outbox publishes once the flushed transaction has committed, just after.
    assert len(sidecar.wait_for_published(1)) == 1
