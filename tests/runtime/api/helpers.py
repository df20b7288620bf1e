"""Shared helpers for the HTTP API conformance tests (dapr-http-api.md §0-§2, §5)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio
from starlette.types import ASGIApp, Receive, Scope, Send

from daca.runtime.config import SidecarConfig
from tests.engines import Engine, SidecarHandle
from tests.runtime.harness import FakeApp, running_app

JSON = "application/json"


def assert_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> None:
    """daprd's error shape (§0): ``{"errorCode", "message"}`` as application/json."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0].strip() == JSON, response.headers
    body = response.json()
    assert body["errorCode"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    if message is not None:
        assert message in body["message"], body


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 10.0, interval: float = 0.05
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds (bounded polling)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


@dataclass
class RecordingApp(FakeApp):
    """A :class:`FakeApp` that also records the headers of every ``GET /dapr/subscribe``."""

    subscribe_headers: list[dict[str, str]] = field(default_factory=list)

    def asgi(self) -> ASGIApp:  # type: ignore[override]
        inner = super().asgi()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/dapr/subscribe":
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                self.subscribe_headers.append(headers)
            await inner(scope, receive, send)

        return app


def sidecar_config(
    tmp_path: Path,
    resources: Path,
    *,
    app_id: str = "myapp",
    app: FakeApp | None = None,
    app_port: int | None = None,
    **kwargs: Any,
) -> SidecarConfig:
    return SidecarConfig(
        app_id=app_id,
        app_port=app.port if app is not None else app_port,
        http_port=0,
        resources_paths=(resources,),
        home=tmp_path / "home",
        bundle_redis=False,
        **kwargs,
    )


def client_for(sidecar: SidecarHandle, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    base = f"http://127.0.0.1:{sidecar.http_port}"
    return httpx.AsyncClient(base_url=base, timeout=10, headers=headers)


@contextlib.asynccontextmanager
async def two_sidecars(
    engine: Engine, first: SidecarConfig, second: SidecarConfig
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two sidecars at once on ``engine``; yields a client for each."""
    async with (
        engine.sidecar(first) as one,
        engine.sidecar(second) as two,
        client_for(one) as a,
        client_for(two) as b,
    ):
        yield a, b


@contextlib.asynccontextmanager
async def app_with_sidecar(
    engine: Engine,
    tmp_path: Path,
    resources: Path,
    subscriptions: list[dict[str, Any]],
    *,
    app: FakeApp | None = None,
    app_id: str = "myapp",
    client_headers: dict[str, str] | None = None,
    **config: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeApp]]:
    """A FakeApp subscribed to ``subscriptions`` behind a sidecar on ``engine``: (client, app)."""
    app = app if app is not None else FakeApp()
    app.subscriptions = subscriptions
    async with running_app(app):
        cfg = sidecar_config(tmp_path, resources, app_id=app_id, app=app, **config)
        async with engine.sidecar(cfg) as sidecar, client_for(sidecar, client_headers) as client:
            yield client, app


@contextlib.asynccontextmanager
async def raw_redis(address: str) -> AsyncIterator[redis.asyncio.Redis]:
    host, port = address.rsplit(":", 1)
    client = redis.asyncio.Redis(host=host, port=int(port))
    try:
        yield client
    finally:
        await client.aclose()
