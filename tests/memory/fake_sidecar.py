"""An in-memory fake of the Dapr sidecar's HTTP API, served through ``httpx.MockTransport``.

It implements the subset the services use with daprd's ``state.in-memory`` semantics
(dapr-http-api.md §1): 204 for a missing key, the ``ETag`` header, 409 ``ERR_STATE_SAVE`` on a
save mismatch, 500 ``ERR_STATE_TRANSACTION`` on any transaction mismatch (nothing applied),
first-write conflicts when a key exists, bulk get with ``data`` fields, and captured publishes.
Setting ``down`` makes every request fail with a connection error, and ``fail_transactions``
every transaction fail with ``ERR_STATE_TRANSACTION``. Each request yields to the event loop
once, so concurrent callers interleave as they would over a network.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

STATE = re.compile(r"^/v1\.0/state/(?P<store>[^/]+)(?:/(?P<rest>.+))?$")
PUBLISH = re.compile(r"^/v1\.0/publish/(?P<pubsub>[^/]+)/(?P<topic>.+)$")


@dataclass
class Published:
    """One captured publish."""

    pubsub: str
    topic: str
    data: Any
    metadata: dict[str, str]


@dataclass
class FakeSidecar:
    """State store and publish capture behind the Dapr HTTP API paths."""

    store_name: str = "statestore"
    down: bool = False
    state: dict[str, tuple[str, str]] = field(default_factory=dict)
    published: list[Published] = field(default_factory=list)
    transaction_conflicts: int = 0
    fail_transactions: bool = False
    requests: int = 0
    bytes_sent: int = 0

    @property
    def transport(self) -> httpx.MockTransport:
        """The transport to hand to ``DaprClient``/``create_app``."""
        return httpx.MockTransport(self.handle_async)

    def value(self, key: str) -> Any:
        """The stored value of ``key`` (parsed), or ``None``."""
        stored = self.state.get(key)
        return None if stored is None else json.loads(stored[0])

    def put(self, key: str, value: Any) -> None:
        """Seed ``key`` directly (a new ETag)."""
        self.state[key] = (json.dumps(value), uuid.uuid4().hex)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        """Yield to the event loop once, as a network hop would, then answer."""
        await asyncio.sleep(0)
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request."""
        self.requests += 1
        self.bytes_sent += len(request.content)
        if self.down:
            raise httpx.ConnectError("connection refused (fake sidecar down)", request=request)
        path = request.url.path
        if path == "/v1.0/healthz/outbound":
            return httpx.Response(204)
        if match := STATE.match(path):
            return self._state(request, match["store"], match["rest"])
        if match := PUBLISH.match(path):
            return self._publish(request, match["pubsub"], match["topic"])
        return _error(404, "ERR_API_UNIMPLEMENTED", f"no route {path}")

    def _state(self, request: httpx.Request, store: str, rest: str | None) -> httpx.Response:
        if store != self.store_name:
            return _error(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {store} is not found")
        if rest is None and request.method in ("POST", "PUT"):
            return self._save(json.loads(request.content))
        if rest == "bulk" and request.method in ("POST", "PUT"):
            return self._bulk(json.loads(request.content)["keys"])
        if rest == "transaction" and request.method in ("POST", "PUT"):
            return self._transaction(json.loads(request.content)["operations"])
        if rest is not None and request.method == "GET":
            return self._get(rest)
        if rest is not None and request.method == "DELETE":
            return self._delete(rest, request.headers.get("if-match"))
        return _error(405, "ERR_MALFORMED_REQUEST", "unsupported")

    def _get(self, key: str) -> httpx.Response:
        stored = self.state.get(key)
        if stored is None:
            return httpx.Response(204)
        headers = {"ETag": stored[1], "content-type": "application/json"}
        return httpx.Response(200, content=stored[0].encode(), headers=headers)

    def _bulk(self, keys: list[str]) -> httpx.Response:
        items: list[dict[str, Any]] = []
        for key in keys:
            stored = self.state.get(key)
            found = {} if stored is None else {"data": json.loads(stored[0]), "etag": stored[1]}
            items.append({"key": key, **found})
        return httpx.Response(200, json=items)

    def _save(self, items: list[dict[str, Any]]) -> httpx.Response:
        for item in items:
            if problem := self._conflict(item):
                return _error(409, "ERR_STATE_SAVE", problem)
            self._apply("upsert", item)
        return httpx.Response(204)

    def _delete(self, key: str, etag: str | None) -> httpx.Response:
        if problem := self._conflict({"key": key, "etag": etag}):
            return _error(409, "ERR_STATE_DELETE", problem)
        self._apply("delete", {"key": key})
        return httpx.Response(204)

    def _transaction(self, operations: list[dict[str, Any]]) -> httpx.Response:
        if self.fail_transactions:
            return _error(500, "ERR_STATE_TRANSACTION", "injected store failure")
        for operation in operations:
            if problem := self._conflict(operation["request"]):
                self.transaction_conflicts += 1
                return _error(500, "ERR_STATE_TRANSACTION", problem)
        for operation in operations:
            self._apply(operation["operation"], operation["request"])
        return httpx.Response(204)

    def _conflict(self, item: dict[str, Any]) -> str | None:
        """Why ``item`` may not be written (in-memory store semantics), or ``None``."""
        key, etag = item["key"], item.get("etag")
        current = self.state.get(key)
        concurrency = (item.get("options") or {}).get("concurrency")
        if etag is not None and (current is None or current[1] != etag):
            return f"possible etag mismatch on {key}"
        if etag is None and concurrency == "first-write" and current is not None:
            return f"item {key} already exists"
        return None

    def _apply(self, operation: str, item: dict[str, Any]) -> None:
        if operation == "delete":
            self.state.pop(item["key"], None)
        else:
            self.put(item["key"], item.get("value"))

    def _publish(self, request: httpx.Request, pubsub: str, topic: str) -> httpx.Response:
        metadata = {
            name.removeprefix("metadata."): value
            for name, value in request.url.params.items()
            if name.startswith("metadata.")
        }
        self.published.append(Published(pubsub, topic, json.loads(request.content), metadata))
        return httpx.Response(204)


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"errorCode": code, "message": message})
