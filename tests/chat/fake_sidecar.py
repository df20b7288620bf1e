"""A fake Dapr sidecar for the chat service, as an ``httpx.MockTransport``.

It serves the memory service's invoke routes from in-memory data and records publishes. Modes
simulate failures: the memory service down (500 ``ERR_DIRECT_INVOKE``), erroring, hanging or
the sidecar unreachable; publishes can fail a number of times, or always.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

MemoryMode = Literal["up", "down", "error", "hang", "unreachable", "garbage"]

INVOKE_PREFIX = "/v1.0/invoke/agent-memory-service/method/"
PUBLISH_PREFIX = "/v1.0/publish/"


@dataclass
class Published:
    """One accepted publish: pubsub, topic and the JSON body."""

    pubsub: str
    topic: str
    data: dict[str, Any]


@dataclass
class FakeSidecar:
    """In-memory memory-service data plus publish recording, served over a mock transport."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    memory_mode: MemoryMode = "up"
    publish_failures: int = 0
    require_concurrent_reads: bool = False
    published: list[Published] = field(default_factory=list)
    publish_attempts: int = 0
    invocations: list[httpx.Request] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _arrived: int = 0
    _both_arrived: asyncio.Event | None = None

    @property
    def transport(self) -> httpx.MockTransport:
        """The transport to give the app as its sidecar."""
        return httpx.MockTransport(self._handle)

    def wait_for_published(self, count: int, timeout: float = 10.0) -> list[Published]:
        """Block until ``count`` events were accepted (or fail after ``timeout``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.published) >= count, timeout):
                raise AssertionError(f"only {len(self.published)} of {count} events published")
            return list(self.published)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        """Route one sidecar request."""
        path = request.url.path
        if path.startswith(INVOKE_PREFIX):
            return await self._invoke(request, path.removeprefix(INVOKE_PREFIX))
        if path.startswith(PUBLISH_PREFIX):
            return self._publish(request, path.removeprefix(PUBLISH_PREFIX))
        return httpx.Response(404, json={"errorCode": "ERR_NOT_FOUND", "message": path})

    async def _invoke(self, request: httpx.Request, method: str) -> httpx.Response:
        """The memory service's routes, subject to ``memory_mode``."""
        self.invocations.append(request)
        if self.memory_mode == "unreachable":
            raise httpx.ConnectError("connection refused", request=request)
        if self.memory_mode == "hang":
            await asyncio.Event().wait()
        if self.memory_mode == "down":
            body = {"errorCode": "ERR_DIRECT_INVOKE", "message": "app not found"}
            return httpx.Response(500, json=body)
        if self.memory_mode == "error":
            return httpx.Response(500, json={"detail": "boom"})
        if self.memory_mode == "garbage":
            return httpx.Response(200, content=b"not json")
        if self.require_concurrent_reads:
            await self._rendezvous()
        return self._memory_route(request, method)

    async def _rendezvous(self) -> None:
        """Wait (bounded) until both reads of a turn have arrived: proves they overlap."""
        if self._both_arrived is None:
            self._both_arrived = asyncio.Event()
        self._arrived += 1
        if self._arrived >= 2:
            self._both_arrived.set()
        async with asyncio.timeout(2):
            await self._both_arrived.wait()

    def _memory_route(self, request: httpx.Request, method: str) -> httpx.Response:
        """``memories/{user}`` and ``conversations/{session}?limit=N``."""
        kind, _, key = method.partition("/")
        if kind == "memories":
            return httpx.Response(200, json=self.users.get(key, {}))
        history = self.histories.get(key, [])
        limit = int(request.url.params.get("limit", len(history)))
        recent = history[-limit:] if limit else []
        body = {"session_id": key, "history": recent, "total_entries": len(history)}
        return httpx.Response(200, json=body)

    def _publish(self, request: httpx.Request, rest: str) -> httpx.Response:
        """Accept a publish, or fail it while ``publish_failures`` remain (-1: always)."""
        self.publish_attempts += 1
        if self.publish_failures != 0:
            self.publish_failures -= 1 if self.publish_failures > 0 else 0
            body = {"errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE", "message": "broker down"}
            return httpx.Response(500, json=body)
        pubsub, _, topic = rest.partition("/")
        with self._changed:
            self.published.append(Published(pubsub, topic, json.loads(request.content)))
            self._changed.notify_all()
        return httpx.Response(204)
