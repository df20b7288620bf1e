"""API tokens in both directions (dapr-http-api.md §0, §5).

``api_token`` (DAPR_API_TOKEN) guards app -> sidecar calls; ``app_api_token`` (APP_API_TOKEN) is
sent by the sidecar to the app on every call it makes (subscribe, delivery, invocation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engines import Engine
from tests.runtime.api.helpers import (
    RecordingApp,
    app_with_sidecar,
    client_for,
    sidecar_config,
)
from tests.runtime.harness import write_components

TOKEN = "dapr-api-token"
SUBSCRIPTIONS = [{"pubsubname": "pubsub", "topic": "t", "route": "/t"}]

BULK_ENTRY = {"entryId": "1", "event": {"a": 1}, "contentType": "application/json"}
# (method, path, json body, status with the right token)
GUARDED: list[tuple[str, str, Any, int]] = [
    ("GET", "/v1.0/metadata", None, 200),
    ("PUT", "/v1.0/metadata/k", None, 204),
    ("POST", "/v1.0/state/statestore", [{"key": "a", "value": 1}], 204),
    ("GET", "/v1.0/state/statestore/a", None, 200),
    ("POST", "/v1.0/state/statestore/bulk", {"keys": ["a"]}, 200),
    ("POST", "/v1.0/state/statestore/transaction", {"operations": []}, 204),
    ("DELETE", "/v1.0/state/statestore/a", None, 204),
    ("POST", "/v1.0/publish/pubsub/t", {"a": 1}, 204),
    ("POST", "/v1.0-alpha1/publish/bulk/pubsub/t", [BULK_ENTRY], 204),
    ("POST", "/v1.0/state/nope", [], 400),
]


@pytest.fixture
def resources(tmp_path: Path) -> Path:
    """Tokens do not depend on the backend: in-memory components only."""
    return write_components(tmp_path / "components", "memory")


async def test_api_token_is_required(engine: Engine, resources: Path, tmp_path: Path) -> None:
    config = sidecar_config(tmp_path, resources, api_token="secret")
    async with engine.sidecar(config) as sidecar, client_for(sidecar) as dapr:
        for method, path, body, ok in GUARDED:
            for headers in ({}, {TOKEN: "wrong"}, {TOKEN: ""}, {"authorization": "secret"}):
                r = await dapr.request(method, path, json=body, headers=headers)
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert_denied(r)
            r = await dapr.request(method, path, json=body, headers={TOKEN: "secret"})
            assert r.status_code == ok, (method, path, r.status_code, r.text)


def assert_denied(r: httpx.Response) -> None:
    """What Go's ``http.Error(w, "invalid api token", 401)`` writes (a HEAD answer: no body)."""
    body = "" if r.request.method == "HEAD" else "invalid api token\n"
    assert (r.status_code, r.text) == (401, body)
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_health_endpoints_are_exempt(engine: Engine, resources: Path, tmp_path: Path) -> None:
    config = sidecar_config(tmp_path, resources, api_token="secret")
    async with engine.sidecar(config) as sidecar, client_for(sidecar) as dapr:
        assert (await dapr.get("/v1.0/healthz")).status_code == 204
        assert (await dapr.get("/v1.0/healthz/outbound")).status_code == 204
        assert (await dapr.get("/v1.0/healthz/")).status_code == 204  # slashes trimmed
        wrong = {TOKEN: "wrong"}
        assert (await dapr.get("/v1.0/healthz", headers=wrong)).status_code == 204
        assert (await dapr.get("/v1.0/healthz/outbound", headers=wrong)).status_code == 204
        # only GET is exempt
        assert_denied(await dapr.post("/v1.0/healthz"))
        assert_denied(await dapr.head("/v1.0/healthz/outbound"))


async def test_app_api_token_is_sent_to_the_app(
    engine: Engine, resources: Path, tmp_path: Path
) -> None:
    app = RecordingApp()
    async with app_with_sidecar(
        engine,
        tmp_path,
        resources,
        SUBSCRIPTIONS,
        app=app,
        client_headers={TOKEN: "secret"},
        api_token="secret",
        app_api_token="apptoken",
    ) as (dapr, _):
        assert app.subscribe_headers, "the sidecar never asked GET /dapr/subscribe"
        assert all(h.get(TOKEN) == "apptoken" for h in app.subscribe_headers)

        r = await dapr.post("/v1.0/publish/pubsub/t", json={"a": 1})
        assert r.status_code == 204, r.text
        [delivery] = await app.wait_for(1)
        assert delivery.path == "/t"
        assert delivery.headers[TOKEN] == "apptoken"

        r = await dapr.post("/v1.0/invoke/myapp/method/x", json={"b": 2})
        assert r.status_code == 200, r.text
        invocation = (await app.wait_for(2))[1]
        assert invocation.path == "/x"
        assert invocation.body == {"b": 2}
        assert invocation.headers[TOKEN] == "apptoken"  # the caller's "secret" is not passed on

        r = await dapr.get("/y", headers={"dapr-app-id": "myapp"})
        assert r.status_code == 200, r.text
        by_header = (await app.wait_for(3))[2]
        assert by_header.path == "/y"
        assert by_header.headers[TOKEN] == "apptoken"


async def test_caller_token_is_not_passed_to_the_app(
    engine: Engine, resources: Path, tmp_path: Path
) -> None:
    app = RecordingApp()
    async with app_with_sidecar(
        engine,
        tmp_path,
        resources,
        SUBSCRIPTIONS,
        app=app,
        client_headers={TOKEN: "secret"},
        api_token="secret",
    ) as (dapr, _):
        assert app.subscribe_headers
        assert all(TOKEN not in h for h in app.subscribe_headers)
        r = await dapr.post("/v1.0/publish/pubsub/t", json={"a": 1})
        assert r.status_code == 204, r.text
        r = await dapr.post("/v1.0/invoke/myapp/method/x", json={"b": 2})
        assert r.status_code == 200, r.text
        received = await app.wait_for(2)
        assert {event.path for event in received} == {"/t", "/x"}
        for event in received:
            assert TOKEN not in event.headers, event


async def test_no_path_forwards_to_an_app_without_the_token(
    engine: Engine, resources: Path, tmp_path: Path
) -> None:
    """Hole 11: with DAPR_API_TOKEN set, the dapr-app-id form on a daca-internal-looking path
    (``/_daca/anything``) was forwarded to the app without a token."""
    app = RecordingApp()
    async with app_with_sidecar(
        engine, tmp_path, resources, SUBSCRIPTIONS, app=app, api_token="secret"
    ) as (dapr, _):
        for path in ("/_daca/anything", "/_daca/v1/other", "/anything"):
            r = await dapr.get(path, headers={"dapr-app-id": "myapp"})
            assert r.status_code == 401, (path, r.status_code, r.text)
            assert r.text == "invalid api token\n"
        r = await dapr.get("/_daca/v1/invoke/x", headers={"dapr-app-id": "myapp"})
        assert r.status_code in (401, 403), r.text  # daca: no peer token; daprd: no token
    assert app.received == []
