"""A fake Dapr sidecar for the chat service, as an ``httpx.MockTransport``.

It serves the memory service's invoke routes from in-memory data, and the chat's state store
with Dapr's in-memory ETag rules and its transactional outbox: a committed transaction publishes
each upsert (its ``outbox.projection`` value where one is given) to ``pubsub``/``conversations``,
recorded in ``published``. Modes simulate failures: the memory service down (500
``ERR_DIRECT_INVOKE``), erroring, hanging or the sidecar unreachable; transactions can fail
(sidecar unreachable) a number of times, or always.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

MemoryMode = Literal["up", "down", "error", "hang", "unreachable", "garbage"]

INVOKE_PREFIX = "/v1.0/invoke/agent-memory-service/method/"
STATE_PREFIX = "/v1.0/state/chat-statestore"
OUTBOX = ("pubsub", "conversations")


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
    facts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    memory_mode: MemoryMode = "up"
    commit_failures: int = 0
    require_concurrent_reads: bool = False
    published: list[Published] = field(default_factory=list)
    commit_attempts: int = 0
    state: dict[str, tuple[Any, str]] = field(default_factory=dict)
    invocations: list[httpx.Request] = field(default_factory=list)
    #: Each state request, as ``"GET /key"``, ``"POST /transaction"`` and so on.
    state_requests: list[str] = field(default_factory=list)
    #: Called once, right after the next state read is answered (then cleared).
    on_state_read: Callable[[], None] | None = None
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
        if path.startswith(STATE_PREFIX):
            rest = path.removeprefix(STATE_PREFIX)
            self.state_requests.append(f"{request.method} {rest}")
            if self.require_concurrent_reads and rest.startswith("/session:"):
                await self._rendezvous()
            return self._state(request, rest)
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
        """Wait (bounded) until both reads of a turn (what the memory service knows, and the
        chat's own record of the session) have arrived: proves they overlap."""
        if self._both_arrived is None:
            self._both_arrived = asyncio.Event()
        self._arrived += 1
        if self._arrived >= 2:
            self._both_arrived.set()
        async with asyncio.timeout(2):
            await self._both_arrived.wait()

    def _memory_route(self, request: httpx.Request, method: str) -> httpx.Response:
        """``memories/{user}`` (GET, and DELETE: forget), ``memories/{user}/context``,
        ``memories/{user}/sessions`` and ``conversations/{session}?limit=N``."""
        kind, _, key = method.partition("/")
        user, _, rest = key.partition("/")
        if kind == "memories" and rest == "context":
            return httpx.Response(200, json=self._context(user, request.url.params))
        if kind == "memories" and rest.startswith("facts"):
            return self._facts_route(request, user, rest.removeprefix("facts").strip("/"))
        if kind == "memories" and rest == "sessions":
            return httpx.Response(200, json={"user_id": user, "sessions": self._sessions(user)})
        if kind == "memories" and request.method == "DELETE":
            self.users.pop(key, None)
            sessions = sorted(
                value["session_id"]
                for name, (value, _) in self.state.items()
                if name.startswith("session:") and isinstance(value, dict)
                and value.get("user_id") == key
            )  # fmt: skip
            body = {"status": "forgotten", "user_id": key, "sessions": sessions}
            return httpx.Response(200, json=body | {"records_deleted": len(sessions)})
        if kind == "memories":
            return httpx.Response(200, json=self.users.get(key, {}))
        history = self.histories.get(key, [])
        limit = int(request.url.params.get("limit", len(history)))
        recent = history[-limit:] if limit else []
        body = {"session_id": key, "history": recent, "total_entries": len(history)}
        return httpx.Response(200, json=body)

    def _context(self, user: str, params: httpx.QueryParams) -> dict[str, Any]:
        """The user's metadata and the session's latest ``limit`` entries (no memories)."""
        history = self.histories.get(params["session_id"], [])
        limit = int(params["limit"])
        return {"metadata": self.users.get(user, {}), "recent": history[-limit:] if limit else []}

    def _sessions(self, user: str) -> list[dict[str, Any]]:
        """The user's sessions, from the chat's own session records (newest first)."""
        found = []
        for name, (value, _) in self.state.items():
            if not (name.startswith("session:") and isinstance(value, dict)):
                continue
            if value.get("user_id") != user:
                continue
            turns = value["turns"]
            found.append({
                "session_id": value["session_id"], "title": turns[0]["user_message"][:80],
                "started_at": turns[0]["timestamp"], "last_at": turns[-1]["timestamp"],
                "turns": len(turns),
            })  # fmt: skip
        return sorted(found, key=lambda info: info["last_at"], reverse=True)

    def _facts_route(self, request: httpx.Request, user: str, fact_id: str) -> httpx.Response:
        """``memories/{user}/facts`` (GET) and ``memories/{user}/facts/{id}`` (DELETE)."""
        facts = self.facts.setdefault(user, [])
        if request.method == "DELETE":
            kept = [f for f in facts if f["fact_id"] != fact_id]
            if len(kept) == len(facts):
                return httpx.Response(404, json={"detail": "no such fact"})
            self.facts[user] = kept
            return httpx.Response(
                200, json={"status": "deleted", "user_id": user, "fact_id": fact_id}
            )
        return httpx.Response(200, json={"user_id": user, "facts": facts})

    def _state(self, request: httpx.Request, rest: str) -> httpx.Response:
        """GET one key, save, or run a transaction (with the outbox)."""
        if request.method == "GET":
            found = self.state.get(rest.lstrip("/"))
            if self.on_state_read is not None:
                hook, self.on_state_read = self.on_state_read, None
                hook()
            if found is None:
                return httpx.Response(204)
            return httpx.Response(200, json=found[0], headers={"etag": found[1]})
        body = json.loads(request.content)
        if rest == "/bulk":
            items = []
            for key in body["keys"]:
                item: dict[str, Any] = {"key": key}
                if (found := self.state.get(key)) is not None:
                    item |= {"data": found[0], "etag": found[1]}
                items.append(item)
            return httpx.Response(200, json=items)
        if rest == "/transaction":
            return self._transaction(request, body["operations"])
        for item in body:
            if not self._etag_ok(item):
                return _conflict("ERR_STATE_SAVE", 409)
        for item in body:
            self.state[item["key"]] = (item.get("value"), uuid.uuid4().hex)
        return httpx.Response(204)

    def _etag_ok(self, request: dict[str, Any]) -> bool:
        found = self.state.get(request["key"])
        if request.get("etag") is not None:
            return found is not None and found[1] == request["etag"]
        first_write = request.get("options", {}).get("concurrency") == "first-write"
        return not (first_write and found is not None)

    def _transaction(
        self, request: httpx.Request, operations: list[dict[str, Any]]
    ) -> httpx.Response:
        """All ETags checked first, then applied; each stored upsert's event published (a
        delete publishes nothing, as the outbox publishes only upserts)."""
        self.commit_attempts += 1
        if self.commit_failures != 0:
            self.commit_failures -= 1 if self.commit_failures > 0 else 0
            raise httpx.ConnectError("sidecar unreachable", request=request)
        stored = [op["request"] for op in operations if not _projection(op)]
        if not all(self._etag_ok(item) for item in stored):
            return _conflict("ERR_STATE_TRANSACTION", 500)
        projected = {
            op["request"]["key"]: op["request"]["value"] for op in operations if _projection(op)
        }
        deleted = {op["request"]["key"] for op in operations if op["operation"] == "delete"}
        stored = [item for item in stored if item["key"] not in deleted]
        with self._changed:
            for key in deleted:
                self.state.pop(key, None)
            for item in stored:
                self.state[item["key"]] = (item.get("value"), uuid.uuid4().hex)
                event = projected.get(item["key"], item.get("value"))
                self.published.append(Published(*OUTBOX, event))
            self._changed.notify_all()
        return httpx.Response(204)


def _projection(operation: dict[str, Any]) -> bool:
    return operation["request"].get("metadata", {}).get("outbox.projection") == "true"


def _conflict(code: str, status: int) -> httpx.Response:
    return httpx.Response(status, json={"errorCode": code, "message": "etag mismatch"})
