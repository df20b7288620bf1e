"""Service invocation between two sidecars (dapr-http-api.md §4), on both engines.

``caller`` has no app; ``callee`` serves a :class:`FakeApp`. On the daca engine the sidecars find
each other through the name registry in ``$DACA_HOME``; on daprd through the loopback network of
``tests/engines``. The last two tests are about daca's own plumbing and run on daca only.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from tests.engines import Engine, per_engine
from tests.runtime.harness import (
    FakeApp,
    running_app,
    running_sidecar,
    start_sidecar_process,
    wait_healthy,
)

TRACE_ID = "a" * 32
TRACEPARENT = f"00-{TRACE_ID}-{'b' * 16}-01"
#: What daprd sends for "no span" when tracing is off (its loopback network configures none).
ZERO_TRACEPARENT = "00-" + "0" * 32 + "-" + "0" * 16 + "-00"
NO_APP_ID = "failed getting app id either from the URL path or the header dapr-app-id"
#: Headers whose every value the echo app reports (FakeApp keeps only the first of a name).
LISTED = (
    "x-forwarded-for",
    "x-forwarded-host",
    "forwarded",
    "dapr-api-token",
    "dapr-callee-app-id",
)


async def echo(request: Request, body: Any) -> Response:
    status = int(request.query_params.get("status", "200"))
    listed = {name: request.headers.getlist(name) for name in LISTED}
    return JSONResponse(
        {"method": request.method, "query": request.url.query, "body": body, "headers": listed},
        status_code=status,
        headers={"x-callee": "yes"},
    )


def config(
    tmp_path: Path,
    app_id: str,
    app: FakeApp | None = None,
    *,
    app_port: int | None = None,
    **kwargs: Any,
) -> SidecarConfig:
    return SidecarConfig(
        app_id=app_id,
        app_port=app.port if app is not None else app_port,
        http_port=0,
        home=tmp_path / "home",
        bundle_redis=False,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def caller_and_callee(
    engine: Engine,
    tmp_path: Path,
    callee: FakeApp,
    *,
    api_token: str | None = None,
    app_api_token: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """``caller`` (no app) and ``callee`` (serving ``callee``); a client for ``caller``."""
    async with running_app(callee):
        callee_cfg = config(
            tmp_path, "callee", callee, api_token=api_token, app_api_token=app_api_token
        )
        caller_cfg = config(tmp_path, "caller", api_token=api_token)
        async with engine.sidecar(callee_cfg), engine.sidecar(caller_cfg) as caller:
            headers = {"dapr-api-token": api_token} if api_token else {}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{caller.http_port}", headers=headers, timeout=30
            ) as client:
                yield client


async def test_invoke_forwards_verb_path_query_body_and_headers(
    engine: Engine, tmp_path: Path
) -> None:
    callee = FakeApp(answer=echo)
    async with caller_and_callee(engine, tmp_path, callee) as dapr:
        response = await dapr.put(
            "/v1.0/invoke/callee/method/api/v1/add?a=1&b=2",
            json={"x": 1},
            headers={"x-custom": "kept", "dapr-callee-app-id": "spoofed"},
        )
    assert response.status_code == 200
    assert response.json()["method"] == "PUT"
    assert response.json()["query"] == "a=1&b=2"
    assert response.json()["body"] == {"x": 1}
    assert response.headers["x-callee"] == "yes"
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers.get_list("date")) == 1  # the app's and the sidecar's: one
    [received] = callee.received
    assert received.path == "/api/v1/add"
    assert received.headers["x-custom"] == "kept"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["dapr-caller-app-id"] == "caller"
    # daprd sends the caller's value as well (in either order); daca only the one it sets
    callee_ids = sorted(response.json()["headers"]["dapr-callee-app-id"])
    assert callee_ids == per_engine(engine, daca=["callee"], daprd=["callee", "spoofed"])
    assert received.headers["dapr-caller-namespace"] == "default"


async def test_traceparent(engine: Engine, tmp_path: Path) -> None:
    """The callee stays in the caller's trace; daprd without tracing passes the span as it is."""
    callee = FakeApp(answer=echo)
    async with caller_and_callee(engine, tmp_path, callee) as dapr:
        traced = await dapr.get(
            "/v1.0/invoke/callee/method/x", headers={"traceparent": TRACEPARENT}
        )
        untraced = await dapr.get("/v1.0/invoke/callee/method/y")
    first, second = callee.received
    version, trace_id, span_id, flags = first.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert (span_id == "b" * 16) == per_engine(engine, daca=False, daprd=True)
    if engine.name == "daca":  # a new trace, with a span of its own
        assert len(second.headers["traceparent"].split("-")[1]) == 32
        assert second.headers["traceparent"] != ZERO_TRACEPARENT
    else:
        assert second.headers["traceparent"] == ZERO_TRACEPARENT
    # daprd's tracing middleware also answers with the span; daca has none
    assert traced.headers.get("traceparent") == per_engine(engine, daca=None, daprd=TRACEPARENT)
    expected = per_engine(engine, daca=None, daprd=ZERO_TRACEPARENT)
    assert untraced.headers.get("traceparent") == expected


@pytest.mark.parametrize(
    ("host_ip", "forwarded_for"),
    [("127.0.0.9", "127.0.0.9"), ("::1", '"[::1]"')],
)
async def test_forwarded_headers_name_the_callers_host(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host_ip: str,
    forwarded_for: str,
) -> None:
    """X-Forwarded-For / -Host and Forwarded name the caller sidecar's host (``DAPR_HOST_IP``)."""
    monkeypatch.setenv("DAPR_HOST_IP", host_ip)
    hostname = socket.gethostname()
    callee = FakeApp(answer=echo)
    async with caller_and_callee(engine, tmp_path, callee) as dapr:
        plain = await dapr.get("/v1.0/invoke/callee/method/x")
        proxied = await dapr.get(
            "/v1.0/invoke/callee/method/x", headers={"x-forwarded-for": "198.51.100.7"}
        )
    assert plain.json()["headers"] == {
        "x-forwarded-for": [host_ip],
        "x-forwarded-host": [hostname],
        "forwarded": [f"for={forwarded_for};by={forwarded_for};host={hostname}"],
        "dapr-api-token": [],
        "dapr-callee-app-id": ["callee"],
    }
    assert proxied.json()["headers"]["x-forwarded-for"] == ["198.51.100.7", host_ip]


async def test_hop_by_hop_headers_are_dropped_both_ways(engine: Engine, tmp_path: Path) -> None:
    async def answer(request: Request, body: Any) -> Response:
        response = Response(
            gzip.compress(b'{"zipped": true}'),
            headers={
                "content-type": "application/json",
                "content-encoding": "gzip",
                "connection": "x-app-hop",
                "x-app-hop": "dropped",
                "cache-control": "no-store",
            },
        )
        response.raw_headers += [(b"x-multi", b"one"), (b"x-multi", b"two")]
        return response

    callee = FakeApp(answer=answer)
    async with caller_and_callee(engine, tmp_path, callee) as dapr:
        response = await dapr.post(
            "/v1.0/invoke/callee/method/h",
            content=b"plain",
            headers=[
                ("content-type", "text/plain"),
                ("connection", "x-hop"),
                ("x-hop", "dropped"),
                ("te", "trailers"),
                ("cookie", "c=1"),
                ("grpc-custom", "g"),
            ],
        )
    [received] = callee.received
    assert received.body == "plain"
    assert received.headers["cookie"] == "c=1"
    assert received.headers["dapr-grpc-custom"] == "g"  # gRPC-reserved names get a prefix
    for dropped in ("x-hop", "te", "grpc-custom"):
        assert dropped not in received.headers, dropped
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"  # the body is passed as it is
    assert response.json() == {"zipped": True}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers.get_list("x-multi") == ["one", "two"]
    assert "x-app-hop" not in response.headers


async def test_error_status_of_the_target_passes_through(engine: Engine, tmp_path: Path) -> None:
    async with caller_and_callee(engine, tmp_path, FakeApp(answer=echo)) as dapr:
        teapot = await dapr.get("/v1.0/invoke/callee/method/x", params={"status": "418"})
        failed = await dapr.post("/v1.0/invoke/callee/method/x?status=500", json=[])
    assert teapot.status_code == 418
    assert teapot.json()["method"] == "GET"
    assert teapot.headers["x-callee"] == "yes"
    assert failed.status_code == 500
    assert failed.json()["body"] == []  # the app's body, not an ERR_DIRECT_INVOKE


async def test_dapr_app_id_header_form(engine: Engine, tmp_path: Path) -> None:
    callee = FakeApp(answer=echo)
    async with caller_and_callee(engine, tmp_path, callee) as dapr:
        response = await dapr.post("/orders/new", json=[1], headers={"dapr-app-id": "callee"})
        # the header wins over the path, which is then the whole method
        over_path = await dapr.get(
            "/v1.0/invoke/elsewhere/method/z", headers={"dapr-app-id": "callee"}
        )
        basic = await dapr.post("/orders/basic", json=[2], auth=("dapr-app-id", "callee"))
    assert (response.status_code, over_path.status_code, basic.status_code) == (200, 200, 200)
    first, second, third = callee.received
    assert first.path == "/orders/new"
    assert "dapr-app-id" not in first.headers
    assert second.path == "/v1.0/invoke/elsewhere/method/z"
    assert third.path == "/orders/basic"
    assert third.body == [2]
    assert third.headers["authorization"].startswith("Basic ")  # passed on


async def test_method_paths_are_cleaned(engine: Engine, tmp_path: Path) -> None:
    callee = FakeApp(answer=echo)
    async with caller_and_callee(engine, tmp_path, callee) as dapr:
        for path in ("x/", "a//b", ""):
            response = await dapr.get(f"/v1.0/invoke/callee/method/{path}")
            assert response.status_code == 200, (path, response.text)
        response = await dapr.get("/orders//x/", headers={"dapr-app-id": "callee"})
        assert response.status_code == 200, response.text
    assert [r.path for r in callee.received] == ["/x", "/a/b", "/", "/orders/x"]


async def test_escaped_and_forbidden_characters_in_the_method(
    engine: Engine, tmp_path: Path
) -> None:
    callee = FakeApp(answer=echo)
    async with caller_and_callee(engine, tmp_path, callee) as dapr:
        ok = await dapr.get("/v1.0/invoke/callee/method/caf%C3%A9/a%20b", params={"q": "1"})
        refused = [
            await dapr.get(f"/v1.0/invoke/callee/method/{method}") for method in ("a%3Fb", "a%23b")
        ]
    assert ok.status_code == 200, ok.text
    assert ok.json()["query"] == "q=1"
    assert [r.path for r in callee.received] == ["/café/a b"]
    for response, method in zip(refused, ("a?b", "a#b"), strict=True):
        assert response.status_code == 500
        assert response.json() == {
            "errorCode": "ERR_DIRECT_INVOKE",
            "message": "failed to invoke, id: callee, err: rpc error: code = InvalidArgument "
            f'desc = invalid method: method contains forbidden character: "{method}"',
        }


async def test_missing_app_id_is_404(engine: Engine, tmp_path: Path) -> None:
    async with caller_and_callee(engine, tmp_path, FakeApp(answer=echo)) as dapr:
        for path in ("/v1.0/invoke//method/x", "/v1.0/invoke/callee", "/some/path"):
            response = await dapr.get(path)
            assert response.status_code == 404, path
            assert response.json() == {"errorCode": "ERR_DIRECT_INVOKE", "message": NO_APP_ID}


async def test_unknown_app_is_err_direct_invoke(engine: Engine, tmp_path: Path) -> None:
    """No sidecar runs for ``nobody``; how the cause reads depends on the name resolution."""
    async with caller_and_callee(engine, tmp_path, FakeApp(answer=echo)) as dapr:
        response = await dapr.get("/v1.0/invoke/nobody/method/x")
    assert response.status_code == 500
    body = response.json()
    assert body["errorCode"] == "ERR_DIRECT_INVOKE"
    # daca answers as daprd's self-hosted mDNS resolver does; the daprd engine's loopback
    # network knows a port for every declared app-id, and nothing listens on it
    cause = per_engine(
        engine,
        daca="couldn't find service: nobody",
        daprd="failed to invoke target nobody after 3 retries. Error: rpc error: "
        "code = Unavailable",
    )
    assert body["message"].startswith(f"failed to invoke, id: nobody, err: {cause}"), body


async def test_target_down_is_err_direct_invoke(engine: Engine, tmp_path: Path) -> None:
    port = free_port()
    callee = config(tmp_path, "callee", app_port=port, app_start_timeout=0.1)
    async with (
        engine.sidecar(callee, wait_ready=False),
        engine.sidecar(config(tmp_path, "caller")) as sidecar,
        httpx.AsyncClient(timeout=30) as client,
    ):
        url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/invoke/callee/method/x?q=1"
        response = await client.get(url)
    assert response.status_code == 500
    assert response.json() == {
        "errorCode": "ERR_DIRECT_INVOKE",
        "message": "failed to invoke, id: callee, err: rpc error: code = Internal desc = error "
        f'invoking app channel: Get "http://127.0.0.1:{port}/x?q=1": dial tcp 127.0.0.1:{port}: '
        "connect: connection refused",
    }


async def test_invoking_its_own_app_id(engine: Engine, tmp_path: Path) -> None:
    """No hop to another sidecar: no caller, callee or forwarding headers are added."""
    app = FakeApp(answer=echo)
    async with (
        running_app(app),
        engine.sidecar(config(tmp_path, "callee", app)) as sidecar,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}") as dapr,
    ):
        response = await dapr.post("/v1.0/invoke/callee/method/self?q=1", json={"b": 2})
    assert response.status_code == 200
    assert response.json()["query"] == "q=1"
    [received] = app.received
    assert received.path == "/self"
    assert received.body == {"b": 2}
    for added in ("dapr-caller-app-id", "dapr-callee-app-id", "dapr-caller-namespace"):
        assert added not in received.headers, added
    assert response.json()["headers"]["x-forwarded-for"] == []
    assert response.json()["headers"]["forwarded"] == []
    # daprd asks a new app for its actor configuration; daca has no actors and does not
    assert app.config_requests == per_engine(engine, daca=0, daprd=1)


async def test_invoking_its_own_app_id_without_an_app(engine: Engine, tmp_path: Path) -> None:
    async with (
        engine.sidecar(config(tmp_path, "caller")) as sidecar,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}") as dapr,
    ):
        response = await dapr.get("/v1.0/invoke/caller/method/x")
    assert response.status_code == 500
    assert response.json() == {
        "errorCode": "ERR_DIRECT_INVOKE",
        "message": "failed to invoke, id: caller, err: cannot invoke local endpoint: "
        "app channel not initialized",
    }


async def test_tokens_on_both_hops(engine: Engine, tmp_path: Path) -> None:
    callee = FakeApp(answer=echo)
    async with caller_and_callee(
        engine, tmp_path, callee, api_token="s3cret", app_api_token="app"
    ) as dapr:
        ok = await dapr.get("/v1.0/invoke/callee/method/x")
        denied = await dapr.get("/v1.0/invoke/callee/method/x", headers={"dapr-api-token": "no"})
    assert ok.status_code == 200
    assert ok.json()["headers"]["dapr-api-token"] == ["app"]  # not the caller's "s3cret"
    assert (denied.status_code, denied.text) == (401, "invalid api token\n")
    assert len(callee.received) == 1


async def test_caller_token_passes_on_when_the_sidecar_checks_none(
    engine: Engine, tmp_path: Path
) -> None:
    """Without DAPR_API_TOKEN the sidecar ignores ``dapr-api-token``, and the callee sees it."""
    sent = {"dapr-api-token": "from-the-caller"}
    async with caller_and_callee(engine, tmp_path, FakeApp(answer=echo)) as dapr:
        plain = await dapr.get("/v1.0/invoke/callee/method/x", headers=sent)
    async with caller_and_callee(
        engine, tmp_path, FakeApp(answer=echo), app_api_token="app"
    ) as dapr:
        replaced = await dapr.get("/v1.0/invoke/callee/method/x", headers=sent)
    assert plain.json()["headers"]["dapr-api-token"] == ["from-the-caller"]
    assert replaced.json()["headers"]["dapr-api-token"] == ["app"]


async def test_sidecar_record_is_removed_on_stop(tmp_path: Path) -> None:
    """daca only: its name registry file (daprd resolves app-ids with mDNS)."""
    from daca.runtime.nameregistry import NameRegistry

    cfg = SidecarConfig(app_id="shortlived", http_port=0, home=tmp_path / "home")
    async with running_sidecar(cfg) as sidecar:
        record = NameRegistry(cfg.home).lookup("shortlived")
        assert record is not None and record.http_port == sidecar.http_port
    assert NameRegistry(cfg.home).lookup("shortlived") is None


async def test_app_ids_resolve_across_runtime_processes(tmp_path: Path) -> None:
    """daca only: the callee's sidecar is a ``daca sidecar`` process; the registry finds it."""
    callee = FakeApp(answer=echo)
    home, resources = tmp_path / "home", tmp_path / "res"
    resources.mkdir()
    async with running_app(callee):
        port = free_port()
        process = start_sidecar_process(resources, home, callee.port, port, app_id="callee")
        try:
            await wait_healthy(port, process)
            caller = SidecarConfig(app_id="caller", http_port=0, home=home)
            async with running_sidecar(caller) as sidecar, httpx.AsyncClient() as client:
                url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/invoke/callee/method/hello"
                response = await client.post(url, json={"from": "another process"})
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert response.status_code == 200
    assert response.json()["body"] == {"from": "another process"}
    assert callee.received[-1].headers["dapr-caller-app-id"] == "caller"


async def test_sidecars_of_one_process_skip_the_http_hop_between_them(tmp_path: Path) -> None:
    """daca only: ``daca up`` runs every sidecar in one process. The callee's sidecar serves the
    hop as a call (it counts no HTTP request) and its app sees what the HTTP hop delivers."""
    callee = FakeApp(answer=echo)
    async with (
        running_app(callee),
        running_sidecar(config(tmp_path, "callee", callee)) as callee_sidecar,
        running_sidecar(config(tmp_path, "caller")) as caller,
        httpx.AsyncClient() as client,
    ):
        url = f"http://127.0.0.1:{caller.http_port}/v1.0/invoke/callee/method/hello"
        response = await client.post(url, json={"from": "the same process"})
        served = callee_sidecar.context.metrics.render().decode()
    assert response.status_code == 200
    assert response.json()["body"] == {"from": "the same process"}
    received = callee.received[-1]
    assert received.path == "/hello"
    assert received.headers["dapr-caller-app-id"] == "caller"
    assert "dapr-peer-token" not in received.headers
    assert "dapr_http_server_request_count{" not in served
