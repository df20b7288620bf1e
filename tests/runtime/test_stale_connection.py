"""A delivery over a kept-alive connection the app has just closed is sent again at once, on a
fresh connection (as Go's HTTP client does for a request not yet answered), instead of waiting
for the broker's redelivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from daca.runtime.config import SidecarConfig
from tests.runtime.harness import running_sidecar, write_components

SUBSCRIPTIONS = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]


class ClosingApp:
    """An HTTP/1.1 app that answers the first event of each connection and closes the
    connection, unanswered, at its second: the race of an app closing an idle
    kept-alive connection just as the sidecar reuses it."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int]] = []  # (connection, request number on it)
        self.answered = asyncio.Event()
        self._connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        connection, events = self._connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = next(
                    (int(line.split(":", 1)[1]) for line in lines[1:]
                     if line.lower().startswith("content-length:")), 0,
                )  # fmt: skip
                await reader.readexactly(length)
                if method == "GET" and path == "/dapr/subscribe":
                    body = json.dumps(SUBSCRIPTIONS).encode()
                elif method == "POST" and path == "/orders":
                    events += 1
                    self.events.append((connection, events))
                    if events > 1:
                        writer.transport.abort()  # reset, never answered
                        return
                    body = b'{"status": "SUCCESS"}'
                    if len(self.events) > 1:
                        self.answered.set()
                else:
                    body = b"{}"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()
            await server.wait_closed()


async def test_a_delivery_on_a_connection_the_app_closed_is_resent_on_a_fresh_one(
    tmp_path: Path,
) -> None:
    app = ClosingApp()
    resources = write_components(tmp_path / "components", "memory")
    async with app.serving() as port:
        config = SidecarConfig(
            app_id="shop", app_port=port, http_port=0, resources_paths=(resources,),
            home=tmp_path / "home", metrics_port=0,
        )  # fmt: skip
        async with running_sidecar(config) as sidecar:
            base = f"http://127.0.0.1:{sidecar.http_port}"
            async with httpx.AsyncClient(base_url=base) as client:
                for n in (1, 2):
                    answer = await client.post("/v1.0/publish/pubsub/orders", json={"n": n})
                    assert answer.status_code == 204
                    if n == 1:
                        while not app.events:
                            await asyncio.sleep(0.01)
                async with asyncio.timeout(10):
                    await app.answered.wait()
                scraped = await client.get(f"http://127.0.0.1:{sidecar.metrics_port}/metrics")
    # The second event: sent on the first connection, reset unanswered, sent again at once on
    # a new connection; no attempt counted as a RETRY (which would wait for the broker).
    first, reset, resent = app.events
    assert first[0] == reset[0] and reset[1] == 2
    assert resent[0] != reset[0] and resent[1] == 1
    assert 'process_status="retry"' not in scraped.text
    assert scraped.text.count('process_status="success"') >= 1
