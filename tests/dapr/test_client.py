"""The Dapr client against a fake sidecar (``httpx.MockTransport``)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import BaseModel

from daca.dapr import (
    DaprAPIError,
    DaprClient,
    DaprSettings,
    ETagMismatchError,
    InvocationError,
    SidecarUnavailableError,
    StateOperation,
    StateTransactionError,
    StateWrite,
)

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, **kwargs: object) -> DaprClient:
    return DaprClient("http://sidecar", transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def error(status: int, code: str, message: str = "boom") -> httpx.Response:
    return httpx.Response(status, json={"errorCode": code, "message": message})


async def test_get_missing_key_is_none() -> None:
    async with make_client(lambda request: httpx.Response(204)) as client:
        assert await client.get_state("statestore", "user:x") is None


async def test_get_parses_value_and_etag() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/state/statestore/user:alice"
        return httpx.Response(200, json={"name": "Alice"}, headers={"ETag": "7"})

    async with make_client(handler) as client:
        entry = await client.get_state("statestore", "user:alice")
    assert entry is not None
    assert (entry.key, entry.value, entry.etag) == ("user:alice", {"name": "Alice"}, "7")


async def test_values_parse_as_json_does_lone_surrogates_included() -> None:
    """Values are parsed as ``json`` parses them, also where pydantic-core's faster parser
    refuses the text: a lone surrogate escape, which a stored value may hold."""
    body = b'{"text": "caf\\u00e9 \\ud83d", "n": 12345678901234567890123, "x": 1.5}'
    async with make_client(lambda request: httpx.Response(200, content=body)) as client:
        entry = await client.get_state("statestore", "k")
    assert entry is not None
    assert entry.value == json.loads(body)
    assert entry.value["text"] == "caf\u00e9 \ud83d"


async def test_key_is_percent_encoded() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(204)

    async with make_client(handler) as client:
        await client.get_state("statestore", "a/b c")
    assert seen == ["/v1.0/state/statestore/a%2Fb%20c"]


async def test_bulk_get_reads_data_field_in_key_order() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"keys": ["a", "b"]}
        return httpx.Response(200, json=[{"key": "b"}, {"key": "a", "data": [1], "etag": "3"}])

    async with make_client(handler) as client:
        a, b = await client.bulk_get_state("statestore", ["a", "b"])
    assert b is None
    assert a is not None and (a.value, a.etag) == ([1], "3")


async def test_save_sends_etag_concurrency_and_pydantic_values() -> None:
    class Value(BaseModel):
        when: float

    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(204)

    item = StateWrite(key="k", value=Value(when=1.5), etag="2", concurrency="first-write")
    async with make_client(handler) as client:
        await client.save_state("statestore", [item])
    expected = {"key": "k", "value": {"when": 1.5}, "etag": "2"}
    assert bodies == [[expected | {"options": {"concurrency": "first-write"}}]]


async def test_save_conflict_is_etag_mismatch() -> None:
    async with make_client(lambda request: error(409, "ERR_STATE_SAVE")) as client:
        with pytest.raises(ETagMismatchError) as caught:
            await client.save_state("statestore", [StateWrite(key="k", value=1, etag="1")])
    assert (caught.value.status, caught.value.error_code) == (409, "ERR_STATE_SAVE")


async def test_delete_sends_if_match() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "DELETE"
        assert request.headers["if-match"] == "4"
        return httpx.Response(204)

    async with make_client(handler) as client:
        await client.delete_state("statestore", "k", etag="4")


async def test_transaction_body_and_failure() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return error(500, "ERR_STATE_TRANSACTION")

    ops = [
        StateOperation(operation="upsert", request=StateWrite(key="a", value={"n": 1}, etag="1")),
        StateOperation(operation="delete", request=StateWrite(key="b")),
    ]
    async with make_client(handler) as client:
        with pytest.raises(StateTransactionError):
            await client.transact_state("statestore", ops)
    assert bodies == [
        {
            "operations": [
                {"operation": "upsert", "request": {"key": "a", "value": {"n": 1}, "etag": "1"}},
                {"operation": "delete", "request": {"key": "b"}},
            ]
        }
    ]


async def test_other_errors_are_api_errors_with_plain_text_body() -> None:
    async with make_client(lambda request: httpx.Response(401, text="invalid api token")) as client:
        with pytest.raises(DaprAPIError) as caught:
            await client.get_state("statestore", "k")
    assert caught.value.status == 401
    assert caught.value.error_code is None
    assert caught.value.message == "invalid api token"


async def test_connection_error_is_sidecar_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with make_client(handler) as client:
        with pytest.raises(SidecarUnavailableError) as caught:
            await client.get_state("statestore", "k")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_timeout_is_sidecar_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with make_client(handler) as client:
        with pytest.raises(SidecarUnavailableError):
            await client.publish("pubsub", "t", {})


async def test_token_header_sent_when_set() -> None:
    tokens: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers.get("dapr-api-token"))
        return httpx.Response(204)

    async with make_client(handler, api_token="s3cret") as client:
        await client.get_state("statestore", "k")
    async with make_client(handler) as client:
        await client.get_state("statestore", "k")
    assert tokens == ["s3cret", None]


async def test_publish_json_and_metadata_query() -> None:
    class Event(BaseModel):
        user_id: str

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with make_client(handler) as client:
        await client.publish("pubsub", "conversations", Event(user_id="u"), metadata={"ttl": "5"})
    (request,) = seen
    assert request.url.path == "/v1.0/publish/pubsub/conversations"
    assert request.url.params["metadata.ttl"] == "5"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"user_id": "u"}


async def test_invoke_passes_target_404_through() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/invoke/agent-memory-service/method/memories/u"
        assert request.url.params["limit"] == "3"
        return httpx.Response(404, json={"detail": "Not Found"})

    async with make_client(handler) as client:
        response = await client.invoke("agent-memory-service", "/memories/u", params={"limit": "3"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_invoke_target_500_passes_through() -> None:
    async with make_client(lambda request: httpx.Response(500, json={"x": 1})) as client:
        response = await client.invoke("app", "m", http_method="POST", json={"a": 1})
    assert response.status_code == 500


async def test_invoke_unreachable_target_is_invocation_error() -> None:
    handler = lambda request: error(500, "ERR_DIRECT_INVOKE", "couldn't find service: x")  # noqa: E731
    async with make_client(handler) as client:
        with pytest.raises(InvocationError) as caught:
            await client.invoke("x", "m")
    assert "couldn't find service" in caught.value.message


async def test_wait_until_ready_polls_until_healthy() -> None:
    answers = [500, 500, 204]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/healthz/outbound"
        return httpx.Response(answers.pop(0))

    async with make_client(handler) as client:
        await client.wait_until_ready(5.0, interval=0.001)
    assert answers == []


async def test_wait_until_ready_gives_up() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with make_client(handler) as client:
        with pytest.raises(SidecarUnavailableError):
            await client.wait_until_ready(0.05, interval=0.01)


def test_settings_port_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DaprSettings().base_url == "http://127.0.0.1:3500"
    monkeypatch.setenv("DAPR_HTTP_PORT", "3501")
    monkeypatch.setenv("DAPR_API_TOKEN", "t")
    settings = DaprSettings()
    assert (settings.base_url, settings.dapr_api_token) == ("http://127.0.0.1:3501", "t")
    monkeypatch.setenv("DAPR_HTTP_ENDPOINT", "http://dapr:3600/")
    assert DaprSettings().base_url == "http://dapr:3600"


async def test_client_from_settings_uses_token() -> None:
    settings = DaprSettings(DAPR_API_TOKEN="tok", APP_API_TOKEN="app")
    assert settings.app_api_token == "app"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    transport = httpx.MockTransport(handler)
    async with DaprClient.from_settings(settings, transport=transport) as client:
        await client.get_state("statestore", "k")
    assert seen[0].headers["dapr-api-token"] == "tok"
    assert str(seen[0].url).startswith(settings.base_url)
