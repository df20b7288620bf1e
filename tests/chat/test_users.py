"""``POST /users``: registration publishes ``UserRegistered``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.chat.conftest import ClientFactory
from tests.chat.fake_sidecar import FakeSidecar


def test_registration_publishes_user_registered(client: TestClient, sidecar: FakeSidecar) -> None:
    body = {"user_id": "ana", "name": "Ana", "preferred_style": "casual"}
    response = client.post("/users", json=body)
    assert response.status_code == 202
    expected = {"event_type": "UserRegistered", **body}
    assert response.json() == expected
    [published] = sidecar.wait_for_published(1)
    assert (published.topic, published.data) == ("conversations", expected)


def test_the_users_topic_is_configurable(make_client: ClientFactory, sidecar: FakeSidecar) -> None:
    client = make_client(users_topic="users")
    client.post("/users", json={"user_id": "ana"})
    assert sidecar.wait_for_published(1)[0].topic == "users"


def test_a_failed_registration_publish_is_retried(client: TestClient, sidecar: FakeSidecar) -> None:
    sidecar.publish_failures = 2
    assert client.post("/users", json={"user_id": "ana", "name": "Ana"}).status_code == 202
    assert sidecar.wait_for_published(1)[0].data["name"] == "Ana"
    assert client.get("/healthz").json()["publisher"]["failed"] == 2


def test_a_bad_registration_is_a_422(client: TestClient) -> None:
    assert client.post("/users", json={"user_id": "a/b"}).status_code == 422
    assert client.post("/users", json={"name": "Ana"}).status_code == 422
