"""The Dapr client's production transport (aiohttp) against real loopback servers: the request
as sent, the answer as read, and each way the sidecar can fail to answer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from daca.dapr import DaprClient, SidecarUnavailableError, StateWrite

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handle: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """The request line, headers (lower-case names) and body of one HTTP/1.1 request."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    line, *rest = head.split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (h.partition(":") for h in rest if h)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line, headers, body


def answer(status: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra, "", ""]
    return "\r\n".join(head).encode() + body


class Recorder:
    """Answers every request with ``reply``; keeps what it received, by connection."""

    def __init__(self, reply: bytes, *, abort_second: bool = False) -> None:
        self.reply, self.abort_second = reply, abort_second
        self.seen: list[tuple[int, str, dict[str, str], bytes]] = []
        self._connections = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        connection, served = self._connections, 0
        try:
            while True:
                line, headers, body = await read_request(reader)
                self.seen.append((connection, line, headers, body))
                served += 1
                if self.abort_second and served > 1:
                    writer.transport.abort()  # the kept-alive connection dies, unanswered
                    return
                writer.write(self.reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def test_request_and_answer_as_on_the_wire() -> None:
    recorder = Recorder(answer("200 OK", b'{"a":1}', "ETag: 3", "Content-Type: application/json"))
    async with serving(recorder) as url, DaprClient(url, api_token="tok") as client:
        entry = await client.get_state("statestore", "user:a b")
        await client.save_state("statestore", [StateWrite(key="k", value={"x": "é"})])
        await client.publish("pubsub", "topic", {"n": 1}, metadata={"ttlInSeconds": "5"})
    assert entry is not None and (entry.value, entry.etag) == ({"a": 1}, "3")
    (_, get, get_headers, _), (_, save, save_headers, body), (_, publish, _, _) = recorder.seen
    assert get == "GET /v1.0/state/statestore/user:a%20b HTTP/1.1"
    assert get_headers["dapr-api-token"] == "tok"
    assert save == "POST /v1.0/state/statestore HTTP/1.1"
    assert save_headers["content-type"] == "application/json"
    assert body.decode() == '[{"key":"k","value":{"x":"é"}}]'
    assert publish == "POST /v1.0/publish/pubsub/topic?metadata.ttlInSeconds=5 HTTP/1.1"


async def test_a_kept_alive_connection_closed_unanswered_is_tried_once_more() -> None:
    """The second POST goes out on the first request's connection, which the server drops
    unanswered (as a server does when its keep-alive timeout races the reuse): it is sent
    again on a new connection and the caller sees only the answer."""
    recorder = Recorder(answer("204 No Content", b""), abort_second=True)
    async with serving(recorder) as url, DaprClient(url) as client:
        await client.save_state("statestore", [StateWrite(key="k", value=1)])
        await client.save_state("statestore", [StateWrite(key="k", value=2)])
    assert [(connection, body) for connection, _, _, body in recorder.seen] == [
        (1, b'[{"key":"k","value":1}]'),
        (1, b'[{"key":"k","value":2}]'),
        (2, b'[{"key":"k","value":2}]'),
    ]


async def test_nothing_listening_is_sidecar_unavailable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        async with DaprClient(url) as client:
            with pytest.raises(SidecarUnavailableError):
                await client.get_state("statestore", "k")
            assert not await client.is_ready()


async def test_an_answer_later_than_the_timeout_is_sidecar_unavailable() -> None:
    never, closed = asyncio.Event(), asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            await never.wait()
        finally:
            writer.close()
            closed.set()

    async with serving(silent) as url, DaprClient(url, timeout=0.2) as client:
        with pytest.raises(SidecarUnavailableError):
            await client.publish("pubsub", "topic", {})
        never.set()
        await closed.wait()


async def test_a_connection_dropped_mid_answer_is_sidecar_unavailable() -> None:
    async def truncating(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
        writer.transport.abort()
        writer.close()

    async with serving(truncating) as url, DaprClient(url) as client:
        with pytest.raises(SidecarUnavailableError):
            await client.get_state("statestore", "k")
