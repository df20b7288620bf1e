"""What the chat service's OpenAPI document says in each mode, and the answers it describes."""

from __future__ import annotations

import time
from typing import Any, cast

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from daca.access.settings import AccessSettings
from daca.chat.app import create_app
from daca.chat.service import ChatService
from daca.contracts.openapi import LOCAL_MODE_REFUSAL
from daca.llm.offline import OfflineModel
from tests.chat.conftest import ClientFactory, chat_settings
from tests.chat.fake_sidecar import FakeSidecar
from tests.local import LOCAL

SECRET = "a-shared-secret-of-at-least-32-bytes!"
PRODUCTION = AccessSettings.model_validate({"DACA_MODE": "production", "AUTH_JWT_SECRET": SECRET})


def document_of(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = cast(FastAPI, client.app).openapi()
    return document


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for operations in document["paths"].values() for op in operations.values()]


def test_local_mode_documents_the_guard_and_no_credentials(client: TestClient) -> None:
    document = document_of(client)
    assert "securitySchemes" not in document.get("components", {})
    for operation in operations(document):
        assert "security" not in operation
        assert "401" not in operation["responses"]
        assert operation["responses"]["403"]["description"] == LOCAL_MODE_REFUSAL


def test_production_mode_documents_the_bearer_token(make_client: ClientFactory) -> None:
    document = document_of(make_client(access=PRODUCTION))
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = document["paths"]
    for path in ("/chat/", "/users"):
        operation = paths[path]["post"]
        assert operation["security"] == [{"HTTPBearer": []}]
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        assert "token's user" in operation["responses"]["403"]["description"]
    for path in ("/", "/healthz"):
        assert "security" not in paths[path]["get"]
        assert not {"401", "403"} & set(paths[path]["get"]["responses"])


def test_production_mode_answers_as_documented(make_client: ClientFactory) -> None:
    client = make_client(access=PRODUCTION)
    body = {"user_id": "ana", "text": "hi"}
    missing = client.post("/chat/", json=body)
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    bob = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    wrong = client.post("/chat/", json=body, headers={"authorization": f"Bearer {bob}"})
    assert wrong.status_code == 403
    assert set(wrong.json()) == {"detail"}


def test_the_text_limits_follow_the_settings(make_client: ClientFactory) -> None:
    document = document_of(make_client(max_message_chars=10))
    text = document["components"]["schemas"]["Message"]["properties"]["text"]
    assert (text["minLength"], text["maxLength"], text["pattern"]) == (1, 10, r"\S")
    answers = document["paths"]["/chat/"]["post"]["responses"]
    assert list(answers) == ["200", "400", "403", "404", "422", "500", "502", "503", "504"]


@pytest.mark.parametrize(
    "timestamp",
    [0, 1.5, "0", "1700000000", "2025-01-01", "2025-01-01T00:00:00", "2025-02-30T00:00:00Z",
     "2025-01-01T00:00:00+0100", "2025-01-01 00:00:00Z", "\uff12025-01-01T00:00:00Z"],
)  # fmt: skip
def test_a_timestamp_must_be_an_rfc3339_date_time(client: TestClient, timestamp: Any) -> None:
    body = {"user_id": "ana", "text": "hi", "metadata": {"timestamp": timestamp}}
    response = client.post("/chat/", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "metadata", "timestamp"]


@pytest.mark.parametrize(
    "timestamp",
    ["2025-01-01T00:00:00Z", "2025-01-01t10:30:00.123456+05:30", "0001-01-01T00:00:00z"],
)
def test_an_rfc3339_timestamp_is_accepted(client: TestClient, timestamp: str) -> None:
    body = {"user_id": "ana", "text": "hi", "metadata": {"timestamp": timestamp}}
    assert client.post("/chat/", json=body).status_code == 200


def test_an_unexpected_error_is_a_500_with_a_detail(
    sidecar: FakeSidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ChatService, "answer", broken)
    app = create_app(chat_settings(), model=OfflineModel(), dapr_transport=sidecar.transport)
    with TestClient(app, raise_server_exceptions=False, **LOCAL) as client:
        response = client.post("/chat/", json={"user_id": "ana", "text": "hi"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PUT", "/chat/", "POST"), ("GET", "/users", "POST"), ("DELETE", "/healthz", "GET")],
)
def test_a_method_not_allowed_names_the_methods_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert (response.status_code, response.headers["allow"]) == (405, allowed)
