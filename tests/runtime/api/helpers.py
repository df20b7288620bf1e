"""Shared helpers for the HTTP API conformance tests (dapr-http-api.md §0-§2, §5)."""

from __future__ import annotations

import asyncio
import contextlib
import json
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


@dataclass
class RawAnswer:
    """An HTTP/1.1 answer read off the socket, with what the request managed to send."""

    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    sent: int  # body bytes written when the answer began (all of them, if it came later)
    closed: bool  # the server announced ``connection: close`` and closed the connection

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    """One HTTP/1.1 connection; each request's body is written while its answer is read.

    A body the server refuses part-way cannot keep the test from seeing the answer (as an HTTP
    client that finishes sending first would). ``declared`` sends a ``Content-Length`` larger
    than ``body``: the rest is never sent, so a server that waits for it never answers.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._sent = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, port: int) -> AsyncIterator[RawConnection]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            yield cls(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
        declared: int | None = None,
        within: float = 20.0,
    ) -> RawAnswer:
        length = len(body) if declared is None else declared
        framing = {"transfer-encoding": "chunked"} if chunked else {"content-length": str(length)}
        lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in {**(headers or {}), **framing}.items()]
        self._sent = 0
        sending = asyncio.create_task(
            self._send(("\r\n".join(lines) + "\r\n\r\n").encode(), body, chunked)
        )
        try:
            return await asyncio.wait_for(self._answer(), within)
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending

    async def _send(self, head: bytes, body: bytes, chunked: bool) -> None:
        with contextlib.suppress(ConnectionError):
            self._writer.write(head)
            for start in range(0, len(body), 64 << 10):
                part = body[start : start + (64 << 10)]
                self._writer.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                await self._writer.drain()
                self._sent += len(part)
            if chunked:
                self._writer.write(b"0\r\n\r\n")
                await self._writer.drain()

    async def _answer(self) -> RawAnswer:
        status_line = await self._reader.readline()
        sent = self._sent
        headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self._body(headers)
        closed = False
        if headers.get("connection", "").lower() == "close":
            with contextlib.suppress(ConnectionError):
                await self._reader.read()  # until the server closes (ended by ``within``)
            closed = True
        return RawAnswer(int(status_line.split()[1]), headers, body, sent, closed)

    async def _body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() != "chunked":
            return await self._reader.readexactly(int(headers.get("content-length", "0")))
        body = b""
        while size := int((await self._reader.readline()).strip() or b"0", 16):
            body += await self._reader.readexactly(size)
            await self._reader.readline()
        await self._reader.readline()
        return body


async def raw_request(port: int, method: str, path: str, body: bytes = b"", **kw: Any) -> RawAnswer:
    """One request on a connection of its own (see :class:`RawConnection`)."""
    async with RawConnection.open(port) as connection:
        return await connection.request(method, path, body, **kw)
