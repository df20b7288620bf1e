"""What Redis keeps when the subscriber or the sidecar stops mid-stream, on both engines.

A sidecar killed mid-delivery loses nothing on either engine: the entries it was handling stay
pending and its next start takes them over. Events that failed because the app was away are
where the engines differ (docs/runtime.md): daca keeps them and delivers them once the app is
back; daprd >= 1.17 acknowledges them after the failed attempt, so they are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daca.realdapr.daprd import DaprdSidecar
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from tests.engines import Engine, per_engine
from tests.runtime.api.helpers import eventually, raw_redis
from tests.runtime.harness import (
    FakeApp,
    component_yaml,
    running_app,
    serve,
    start_sidecar_process,
    wait_healthy,
)
from tests.runtime.test_delivery import acknowledged_for_good

pytestmark = pytest.mark.redis

APP_ID = "orders-app"
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


def write_resources(directory: Path, redis_address: str) -> Path:
    """The Redis pub/sub with fast redelivery on both engines, and the subscription.

    ``redeliverInterval`` in milliseconds: daprd 1.18 ignores a duration string there (and
    reclaims every 15 s; docs/runtime.md); ``processingTimeout`` it reads either way.
    """
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {
        "redisHost": redis_address,
        "processingTimeout": "500ms",
        "redeliverInterval": "200",
    }
    pubsub = component_yaml("pubsub", "pubsub.redis", metadata)
    (directory / "components.yaml").write_text(pubsub + SUBSCRIPTION)
    return directory


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


def config_for(tmp_path: Path, resources: Path, app_port: int, http_port: int = 0) -> SidecarConfig:
    return SidecarConfig(
        app_id=APP_ID,
        app_port=app_port,
        http_port=http_port,
        resources_paths=(resources,),
        home=tmp_path / "home",
        bundle_redis=False,
    )


async def test_subscriber_stopped_mid_stream(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    resources = write_resources(tmp_path / "res", redis_url)
    app_port = free_port()
    first = FakeApp()
    config = config_for(tmp_path, resources, app_port)
    async with AppOnPort(first, app_port) as first_app, engine.sidecar(config) as sidecar:
        await publish(sidecar.http_port, 10)
        await first.wait_for(10)
        await first_app.stop()  # the app goes away; these events cannot be delivered now
        await publish(sidecar.http_port, 20, start=10)
        if engine.name == "daprd":  # every one tried once, failed, acknowledged: gone for good
            await acknowledged_for_good(redis_url, "orders", APP_ID)
        second = FakeApp()
        async with AppOnPort(second, app_port):
            expected = per_engine(engine, daca=set(range(30)), daprd=set(range(10)))
            await wait_until(lambda: delivered(first) | delivered(second) == expected)
            with pytest.raises(TimeoutError):  # and nothing else comes
                await second.wait_for(len(expected) - len(delivered(first)) + 1, timeout=1.5)


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


class Crashable:
    """A sidecar that can be SIGKILLed and started again on the same port.

    daca: a ``daca sidecar`` process (the in-process runtime cannot be killed); daprd: a daprd
    process, killed through its handle.
    """

    def __init__(self, engine: Engine, tmp_path: Path, resources: Path, app_port: int) -> None:
        self.engine, self.tmp_path, self.resources, self.app_port = (
            engine,
            tmp_path,
            resources,
            app_port,
        )
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._daprd: DaprdSidecar | None = None

    async def start(self) -> None:
        if self._daprd is not None:
            await self.engine.restart(self._daprd)
            return
        home = self.tmp_path / "home"
        self._process = start_sidecar_process(self.resources, home, self.app_port, self.port)
        await wait_healthy(self.port, self._process)

    def kill(self) -> None:
        if self._daprd is not None:
            self._daprd.kill()
        elif self._process is not None:
            self._process.kill()
            self._process.wait()

    async def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            await asyncio.to_thread(self._process.wait, 15)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Crashable]:
        if self.engine.name == "daca":
            await self.start()
            try:
                yield self
            finally:
                await self.stop()
            return
        config = config_for(self.tmp_path, self.resources, self.app_port, self.port)
        async with self.engine.sidecar(config) as sidecar:
            assert isinstance(sidecar, DaprdSidecar)
            self._daprd = sidecar
            yield self


async def test_sidecar_killed_mid_delivery_loses_nothing(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    resources = write_resources(tmp_path / "res", redis_url)
    hold = asyncio.Event()

    async def slow(request: Request, body: Any) -> Response:
        if body["data"]["n"] >= 5:
            await hold.wait()  # the sidecar dies while these are in flight
        return JSONResponse({"status": "SUCCESS"})

    app = FakeApp(answer=slow)
    async with running_app(app):
        sidecar = Crashable(engine, tmp_path, resources, app.port)
        async with sidecar.running():
            await publish(sidecar.port, 10)
            await app.wait_for(10)  # 5 acknowledged, 5 in flight
            sidecar.kill()
            hold.set()
            assert delivered(app) == set(range(10))
            app.received.clear()
            await sidecar.start()
            await wait_until(lambda: delivered(app) >= set(range(5, 10)))


async def test_slow_handler_is_not_delivered_twice_by_its_own_sidecar(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    """Documented difference (docs/runtime.md): a handler slower than ``processingTimeout``
    (500 ms here). daprd cancels the delivery at ``processingTimeout``, leaves the entry pending
    and reclaims it for itself: the app gets the event again while still handling it. daca never
    reclaims what it is handling."""
    resources = write_resources(tmp_path / "res", redis_url)
    release = asyncio.Event()

    async def slow(request: Request, body: Any) -> Response:
        await release.wait()
        return JSONResponse({"status": "SUCCESS"})

    app = FakeApp(answer=slow)
    async with running_app(app):
        config = config_for(tmp_path, resources, app.port)
        async with engine.sidecar(config) as sidecar:
            await publish(sidecar.http_port, 1)
            await app.wait_for(1)
            if engine.name == "daprd":
                await app.wait_for(2, timeout=10)
            else:  # well past processingTimeout + redeliverInterval
                with pytest.raises(TimeoutError):
                    await app.wait_for(2, timeout=2.0)
            release.set()
            async with raw_redis(redis_url) as client:

                async def settled() -> bool:
                    return int((await client.xpending("orders", APP_ID))["pending"]) == 0

                await eventually(settled)
    copies = len(app.received)
    assert per_engine(engine, daca=copies == 1, daprd=copies >= 2), copies
    assert {r.body["id"] for r in app.received} == {app.received[0].body["id"]}
