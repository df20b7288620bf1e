"""What the memory service's OpenAPI document says, and the answers it says them about."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import FakeWriter, memory_settings

EVENT_MEDIA_TYPES = ["application/cloudevents+json", "application/json"]


def document(**settings: Any) -> dict[str, Any]:
    app = create_app(memory_settings(**settings), summary_writer=FakeWriter())
    openapi: dict[str, Any] = app.openapi()
    return openapi


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/deadletters", "GET, POST"),
        ("OPTIONS", "/deadletters", "GET, POST"),
        ("PUT", "/memories/u", "DELETE, GET"),
        ("GET", "/memories/u/initialize", "POST"),
        ("GET", "/conversations", "POST"),
    ],
)
async def test_a_method_not_allowed_names_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    "query", ["limit=1&limit=2", "limit=%2B1", "limit=%201", "limit=1_0", "limit=1.0", "limit=-1",
              "limit=x", "limit="],
)  # fmt: skip
async def test_limit_is_one_whole_number(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/conversations/s1?{query}")
    assert response.status_code == 422, response.text
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["query", "limit"]


async def test_a_limit_in_digits_is_read(client: httpx.AsyncClient) -> None:
    for query in ("limit=0", "limit=007", ""):
        response = await client.get(f"/conversations/s1?{query}")
        assert response.status_code == 200, (query, response.text)


def test_the_subscribers_take_a_cloud_event_and_never_answer_422() -> None:
    paths = document()["paths"]
    for path in ("/conversations", "/deadletters"):
        operation = paths[path]["post"]
        assert list(operation["requestBody"]["content"]) == EVENT_MEDIA_TYPES
        assert set(operation["responses"]) == {"200", "403", "415", "500"}
    event = paths["/conversations"]["post"]["requestBody"]["content"]["application/json"]
    assert event["schema"] == {"$ref": "#/components/schemas/CloudEvent"}
    schemas = document()["components"]["schemas"]
    assert set(schemas["CloudEvent"]["properties"]["data"]["discriminator"]["mapping"]) == {
        "ConversationUpdated",
        "UserRegistered",
    }
    assert schemas["ConversationUpdated"]["properties"]["session_id"]["maxLength"] == 128


def test_every_answer_of_every_operation_has_a_json_body_schema() -> None:
    """Every answer is JSON, but the Prometheus exposition of ``GET /metrics``."""
    for path, operations in document()["paths"].items():
        for operation in operations.values():
            for status, answer in operation["responses"].items():
                prometheus = (path, status) == ("/metrics", "200")
                media = "text/plain" if prometheus else "application/json"
                assert "schema" in answer["content"][media], (operation, status)


def test_the_app_token_is_documented_where_it_is_checked() -> None:
    without = document()
    assert "securitySchemes" not in without["components"]
    assert all(
        "security" not in operation and "401" not in operation["responses"]
        for operations in without["paths"].values()
        for operation in operations.values()
    )
    with_token = document(dapr=DaprSettings(APP_API_TOKEN="app-secret"))
    scheme = with_token["components"]["securitySchemes"]["AppApiToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "dapr-api-token")
    paths = with_token["paths"]
    for path, method in (("/memories/{user_id}", "get"), ("/conversations", "post"),
                         ("/bulk/conversations", "post"),
                         ("/deadletters/replay", "post")):  # fmt: skip
        assert paths[path][method]["security"] == [{"AppApiToken": []}]
        assert "401" in paths[path][method]["responses"]
    assert "security" not in paths["/healthz"]["get"]
    assert "401" not in paths["/healthz"]["get"]["responses"]


def test_production_mode_documents_no_local_refusal() -> None:
    production = document(
        access={"DACA_MODE": "production"}, dapr=DaprSettings(APP_API_TOKEN="app-secret")
    )
    assert "403" not in production["paths"]["/memories/{user_id}"]["get"]["responses"]
    assert "403" in document()["paths"]["/memories/{user_id}"]["get"]["responses"]


async def test_an_unexpected_error_is_a_500_with_a_detail(
    sidecar: FakeSidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(
        memory_settings(), summary_writer=FakeWriter(), dapr_transport=sidecar.transport
    )

    async def broken(user_id: str) -> None:
        raise RuntimeError("a bug")

    async with app.router.lifespan_context(app):
        monkeypatch.setattr(app.state.services.users, "get", broken)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/memories/u")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
