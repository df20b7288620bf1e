"""Test support: a real sidecar on a free port and a programmable app for it to deliver to."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daca.runtime.config import SidecarConfig
from daca.runtime.sidecar import Sidecar

#: Backends under test; ``write_components`` turns a name into state and pub/sub components.
BACKENDS = ("memory", "sqlite", "redis")


def component_yaml(name: str, kind: str, metadata: dict[str, str]) -> str:
    items = "".join(f'\n  - name: {k}\n    value: "{v}"' for k, v in metadata.items())
    return (
        f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
        f"spec:\n  type: {kind}\n  version: v1\n  metadata:{items or ' []'}\n"
    )


def write_components(
    directory: Path, backend: str, *, redis_address: str | None = None, extra: str = ""
) -> Path:
    """``statestore`` and ``pubsub`` components for ``backend`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if backend == "redis":
        assert redis_address is not None
        fast = {
            "redisHost": redis_address,
            "processingTimeout": "500ms",
            "redeliverInterval": "200ms",
        }
        state = component_yaml("statestore", "state.redis", {"redisHost": redis_address})
        pubsub = component_yaml("pubsub", "pubsub.redis", fast)
    else:
        kind = "state.sqlite" if backend == "sqlite" else "state.in-memory"
        meta = {"connectionString": str(directory / "state.db")} if backend == "sqlite" else {}
        state = component_yaml("statestore", kind, meta)
        pubsub = component_yaml("pubsub", "pubsub.in-memory", {"redeliverInterval": "200ms"})
    (directory / "components.yaml").write_text(state + "---\n" + pubsub + extra)
    return directory


Answer = Callable[[Request, Any], Awaitable[Response]]


async def _success(request: Request, body: Any) -> Response:
    return JSONResponse({"status": "SUCCESS"})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApp:
    """An app on a free port: serves ``/dapr/subscribe``, records every other request.

    ``GET /dapr/config`` (daprd asks every app for its actor configuration at start-up; the daca
    runtime does not) answers 404, "no actors", and is counted in ``config_requests`` only.
    """

    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    answer: Answer = _success
    received: list[Received] = field(default_factory=list)
    port: int = 0
    config_requests: int = 0
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def asgi(self) -> Starlette:
        async def subscribe(request: Request) -> Response:
            return JSONResponse(self.subscriptions)

        async def actor_config(request: Request) -> Response:
            self.config_requests += 1
            return Response(status_code=404)

        async def anything(request: Request) -> Response:
            raw = await request.body()
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode()
            async with self._arrived:
                self.received.append(Received(request.url.path, dict(request.headers), body))
                self._arrived.notify_all()
            return await self.answer(request, body)

        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        return Starlette(
            routes=[
                Route("/dapr/subscribe", subscribe),
                Route("/dapr/config", actor_config),
                Route("/{path:path}", anything, methods=methods),
            ]
        )

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived (bounded); return them."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received) >= count), timeout
            )
        return list(self.received)


@contextlib.asynccontextmanager
async def serve(app: Any, port: int = 0) -> AsyncIterator[int]:
    """Serve an ASGI app on a loopback port until the block ends; yields the port. The socket
    is bound here (port 0: the kernel picks a free one) and handed to uvicorn, so no other
    process can take the port between choosing it and listening on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def running_app(app: FakeApp) -> AsyncIterator[FakeApp]:
    async with serve(app.asgi()) as port:
        app.port = port
        yield app


@contextlib.asynccontextmanager
async def running_sidecar(
    config: SidecarConfig, *, wait_ready: bool = True
) -> AsyncIterator[Sidecar]:
    sidecar = Sidecar(config)
    await sidecar.start()
    try:
        while wait_ready and not sidecar.context.ready:
            await asyncio.sleep(0.01)
        yield sidecar
    finally:
        await sidecar.stop()


def start_sidecar_process(
    resources: Path, home: Path, app_port: int, http_port: int, app_id: str = "orders-app"
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DACA_HOME": str(home)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daca",
            "sidecar",
            "--app-id",
            app_id,
            "--app-port",
            str(app_port),
            "--dapr-http-port",
            str(http_port),
            "--resources-path",
            str(resources),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            assert process.poll() is None, "the sidecar process exited"
            try:
                answer = await client.get(f"http://127.0.0.1:{port}/v1.0/healthz")
                if answer.status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the sidecar did not become healthy")
