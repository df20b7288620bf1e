"""Nothing is lost on Redis when the subscriber or the runtime stops mid-stream."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daca.runtime.config import SidecarConfig
from daca.runtime.redis_server import free_port
from tests.runtime.harness import (
    FakeApp,
    running_app,
    running_sidecar,
    serve,
    start_sidecar_process,
    wait_healthy,
    write_components,
)

pytestmark = pytest.mark.redis

SUBSCRIPTION = """---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    default: /orders
"""


def delivered(app: FakeApp) -> set[int]:
    return {r.body["data"]["n"] for r in app.received if r.path == "/orders"}


async def publish(port: int, count: int, start: int = 0) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for n in range(start, start + count):
            response = await client.post("/v1.0/publish/pubsub/orders", json={"n": n})
            assert response.status_code == 204


async def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_subscriber_stopped_mid_stream_loses_nothing(tmp_path: Path, redis_url: str) -> None:
    resources = write_components(
        tmp_path / "res", "redis", redis_address=redis_url, extra=SUBSCRIPTION
    )
    app_port = free_port()
    first = FakeApp()
    config = SidecarConfig(
        app_id="orders-app",
        app_port=app_port,
        http_port=0,
        resources_paths=(resources,),
        home=tmp_path / "home",
        bundle_redis=False,
    )
    async with AppOnPort(first, app_port) as first_app, running_sidecar(config) as sidecar:
        await publish(sidecar.http_port, 10)
        await first.wait_for(10)
        await first_app.stop()  # the app goes away; these events cannot be delivered now
        await publish(sidecar.http_port, 20, start=10)
        second = FakeApp()
        async with AppOnPort(second, app_port):
            await wait_until(lambda: delivered(first) | delivered(second) == set(range(30)))


class AppOnPort:
    """Serves ``app`` on a fixed port; ``stop`` ends it early (the subscriber goes away)."""

    def __init__(self, app: FakeApp, port: int) -> None:
        self.app = app
        self._serving = serve(app.asgi(), port)
        self._running = False

    async def __aenter__(self) -> AppOnPort:
        self.app.port = await self._serving.__aenter__()
        self._running = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._running:
            self._running = False
            await self._serving.__aexit__(None, None, None)


async def test_runtime_killed_mid_delivery_loses_nothing(tmp_path: Path, redis_url: str) -> None:
    resources = write_components(
        tmp_path / "res", "redis", redis_address=redis_url, extra=SUBSCRIPTION
    )
    hold = asyncio.Event()

    async def slow(request: Request, body: Any) -> Response:
        if body["data"]["n"] >= 5:
            await hold.wait()  # the runtime dies while these are in flight
        return JSONResponse({"status": "SUCCESS"})

    app = FakeApp(answer=slow)
    async with running_app(app):
        port = free_port()
        process = start_sidecar_process(resources, tmp_path / "home", app.port, port)
        try:
            await wait_healthy(port, process)
            await publish(port, 10)
            await app.wait_for(10)  # 5 acknowledged, 5 in flight
            process.send_signal(signal.SIGKILL)
            process.wait()
        finally:
            if process.poll() is None:
                process.kill()
        hold.set()
        assert delivered(app) == set(range(10))
        app.received.clear()
        process = start_sidecar_process(resources, tmp_path / "home", app.port, port)
        try:
            await wait_until(lambda: delivered(app) >= set(range(5, 10)))
        finally:
            process.terminate()
            process.wait(timeout=15)
