"""Service invocation between separately started sidecars, resolved by the name registry."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daca.runtime.config import SidecarConfig
from daca.runtime.redis_server import free_port
from tests.runtime.harness import (
    FakeApp,
    running_app,
    running_sidecar,
    start_sidecar_process,
    wait_healthy,
)


async def echo(request: Request, body: Any) -> Response:
    status = int(request.query_params.get("status", "200"))
    return JSONResponse(
        {"method": request.method, "query": request.url.query, "body": body},
        status_code=status,
        headers={"x-callee": "yes"},
    )


@contextlib.asynccontextmanager
async def two_sidecars(
    tmp_path: Path,
    callee: FakeApp,
    *,
    api_token: str | None = None,
    app_api_token: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """``caller`` (no app) and ``callee`` (serving ``callee``) sharing one name registry."""
    home = tmp_path / "home"
    async with running_app(callee):
        callee_cfg = SidecarConfig(
            app_id="callee",
            app_port=callee.port,
            http_port=0,
            home=home,
            api_token=api_token,
            app_api_token=app_api_token,
        )
        caller_cfg = SidecarConfig(app_id="caller", http_port=0, home=home, api_token=api_token)
        async with running_sidecar(callee_cfg), running_sidecar(caller_cfg) as caller:
            headers = {"dapr-api-token": api_token} if api_token else {}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{caller.http_port}", headers=headers
            ) as client:
                yield client


async def test_invoke_forwards_verb_path_query_body_and_headers(tmp_path: Path) -> None:
    callee = FakeApp(answer=echo)
    async with two_sidecars(tmp_path, callee) as dapr:
        response = await dapr.put(
            "/v1.0/invoke/callee/method/api/v1/add?a=1&b=2",
            json={"x": 1},
            headers={"x-custom": "kept", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
        )
    assert response.status_code == 200
    assert response.json() == {"method": "PUT", "query": "a=1&b=2", "body": {"x": 1}}
    assert response.headers["x-callee"] == "yes"
    [received] = callee.received
    assert received.path == "/api/v1/add"
    assert received.headers["x-custom"] == "kept"
    assert received.headers["dapr-caller-app-id"] == "caller"
    assert received.headers["dapr-callee-app-id"] == "callee"
    assert received.headers["traceparent"].split("-")[1] == "a" * 32  # same trace, new span


async def test_error_status_of_the_target_passes_through(tmp_path: Path) -> None:
    async with two_sidecars(tmp_path, FakeApp(answer=echo)) as dapr:
        response = await dapr.get("/v1.0/invoke/callee/method/x", params={"status": "418"})
    assert response.status_code == 418
    assert response.json()["method"] == "GET"


async def test_dapr_app_id_header_form(tmp_path: Path) -> None:
    callee = FakeApp(answer=echo)
    async with two_sidecars(tmp_path, callee) as dapr:
        response = await dapr.post("/orders/new", json=[1], headers={"dapr-app-id": "callee"})
    assert response.status_code == 200
    assert callee.received[0].path == "/orders/new"
    assert "dapr-app-id" not in callee.received[0].headers


async def test_unknown_app_is_err_direct_invoke(tmp_path: Path) -> None:
    async with two_sidecars(tmp_path, FakeApp(answer=echo)) as dapr:
        response = await dapr.get("/v1.0/invoke/nobody/method/x")
    assert response.status_code == 500
    assert response.json() == {
        "errorCode": "ERR_DIRECT_INVOKE",
        "message": "failed to invoke, id: nobody, err: couldn't find service: nobody",
    }


async def test_target_down_is_err_direct_invoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    callee = SidecarConfig(
        app_id="callee", app_port=free_port(), http_port=0, home=home, app_start_timeout=0.1
    )
    caller = SidecarConfig(app_id="caller", http_port=0, home=home)
    async with (
        running_sidecar(callee),
        running_sidecar(caller) as sidecar,
        httpx.AsyncClient() as client,
    ):
        url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/invoke/callee/method/x"
        response = await client.get(url)
    assert response.status_code == 500
    assert response.json()["errorCode"] == "ERR_DIRECT_INVOKE"


async def test_tokens_on_both_hops(tmp_path: Path) -> None:
    callee = FakeApp(answer=echo)
    async with two_sidecars(tmp_path, callee, api_token="s3cret", app_api_token="app") as dapr:
        ok = await dapr.get("/v1.0/invoke/callee/method/x")
        denied = await dapr.get("/v1.0/invoke/callee/method/x", headers={"dapr-api-token": "no"})
    assert ok.status_code == 200
    assert (denied.status_code, denied.text) == (401, "invalid api token")
    assert all(r.headers.get("dapr-api-token") == "app" for r in callee.received)


async def test_sidecar_record_is_removed_on_stop(tmp_path: Path) -> None:
    from daca.runtime.nameregistry import NameRegistry

    config = SidecarConfig(app_id="shortlived", http_port=0, home=tmp_path / "home")
    async with running_sidecar(config) as sidecar:
        record = NameRegistry(config.home).lookup("shortlived")
        assert record is not None and record.http_port == sidecar.http_port
    assert NameRegistry(config.home).lookup("shortlived") is None


async def test_app_ids_resolve_across_runtime_processes(tmp_path: Path) -> None:
    """The callee's sidecar runs as its own ``daca sidecar`` process; the registry finds it."""
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
