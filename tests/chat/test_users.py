"""``POST /users``: a registration is recorded, and ``UserRegistered`` published by the outbox."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.chat.fake_sidecar import FakeSidecar


def test_registration_publishes_user_registered(client: TestClient, sidecar: FakeSidecar) -> None:
    body = {"user_id": "ana", "name": "Ana", "preferred_style": "casual"}
    response = client.post("/users", json=body)
    assert response.status_code == 202
    expected = {"event_type": "UserRegistered", **body}
    assert response.json() == expected
    [published] = sidecar.wait_for_published(1)
    assert (published.topic, published.data) == ("conversations", expected)


def test_a_registration_is_stored(client: TestClient, sidecar: FakeSidecar) -> None:
    client.post("/users", json={"user_id": "ana", "name": "Ana"})
    sidecar.wait_for_published(1)
    stored = sidecar.value("registration:ana")
    assert stored == {"user_id": "ana", "name": "Ana", "preferred_style": None}


def test_a_failed_registration_is_retried(client: TestClient, sidecar: FakeSidecar) -> None:
    sidecar.commit_failures = 2
    assert client.post("/users", json={"user_id": "ana", "name": "Ana"}).status_code == 202
    assert sidecar.wait_for_published(1)[0].data["name"] == "Ana"
    assert client.get("/healthz").json()["recorder"]["failed"] == 2


def test_a_bad_registration_is_a_422(client: TestClient) -> None:
    assert client.post("/users", json={"user_id": "a/b"}).status_code == 422
    assert client.post("/users", json={"name": "Ana"}).status_code == 422
