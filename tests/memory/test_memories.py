"""``/memories``: defaults, initialisation, errors and the app token."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app
from tests.local import LOCAL
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import FakeWriter, memory_settings, running_app


async def test_unknown_user_gets_tutorial_defaults(client: httpx.AsyncClient) -> None:
    response = await client.get("/memories/junaid")
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["preferred_style"], body["user_summary"]) == (
        "junaid",
        "casual",
        None,
    )


async def test_initialize_returns_tutorial_shape_and_is_read_back(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    profile = {"name": "Junaid", "preferred_style": "formal", "goal": "learn Dapr"}
    response = await client.post("/memories/junaid/initialize", json=profile)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["user_id"]) == ("success", "junaid")
    assert {k: body["metadata"][k] for k in profile} == profile
    read = (await client.get("/memories/junaid")).json()
    assert {k: read[k] for k in profile} == profile
    assert sidecar.value("user:junaid")["name"] == "Junaid"


async def test_initialize_keeps_summary_bookkeeping(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    sidecar.put(
        "user:bob",
        {
            "name": "Bob",
            "user_summary": "Bob likes Go.",
            "summary_turn_count": 7,
            "summary_last_turn_id": "t7",
            "summary_updated_at": "2025-01-01T00:00:00+00:00",
        },
    )
    response = await client.post("/memories/bob/initialize", json={"preferred_style": "formal"})
    assert response.status_code == 200
    stored = sidecar.value("user:bob")
    assert stored["user_summary"] == "Bob likes Go."
    assert (stored["summary_turn_count"], stored["summary_last_turn_id"]) == (7, "t7")
    assert (stored["name"], stored["preferred_style"]) == ("Bob", "formal")


async def test_invalid_user_id_is_rejected(client: httpx.AsyncClient) -> None:
    assert (await client.get("/memories/a||b")).status_code == 422
    assert (await client.get("/memories/" + "x" * 129)).status_code == 422


async def test_sidecar_down_is_503(client: httpx.AsyncClient, sidecar: FakeSidecar) -> None:
    sidecar.down = True
    response = await client.get("/memories/alice")
    assert response.status_code == 503
    assert "sidecar unavailable" in response.json()["detail"]
    response = await client.post("/memories/alice/initialize", json={"name": "A"})
    assert response.status_code == 503


async def test_app_api_token_is_required_when_set(sidecar: FakeSidecar) -> None:
    settings = memory_settings(dapr=DaprSettings(APP_API_TOKEN="app-secret"))
    async with running_app(sidecar, FakeWriter(), settings) as client:
        assert (await client.get("/memories/u")).status_code == 401
        wrong = await client.get("/memories/u", headers={"dapr-api-token": "nope"})
        assert wrong.status_code == 401
        ok = await client.get("/memories/u", headers={"dapr-api-token": "app-secret"})
        assert ok.status_code == 200
        assert (await client.get("/healthz")).status_code == 200


def test_sync_test_client_runs_the_lifespan(sidecar: FakeSidecar) -> None:
    app = create_app(
        memory_settings(), summary_writer=FakeWriter(), dapr_transport=sidecar.transport
    )
    with TestClient(app, **LOCAL) as client:
        assert "Welcome" in client.get("/").json()["message"]
        health = client.get("/healthz").json()
        assert health["status"] == "ok"
        assert health["metrics"]["events_handled"] == 0
        assert client.get("/memories/u").json()["name"] == "u"
