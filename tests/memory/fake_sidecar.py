"""The memory tests' Dapr sidecar: the daca runtime's own HTTP API app, in process.

:class:`FakeSidecar` starts the runtime's ``state.in-memory`` and ``pubsub.in-memory`` backends
(as ``statestore`` and ``pubsub``, for app-id ``agent-memory-service``: the memory service's
defaults), builds the runtime's sidecar API over them (``daca.runtime.api.app.build_app``, with
the sidecar's default request body limit) and serves it through ``httpx.ASGITransport``. State,
ETags, first-write, bulk get, transactions, publishing and every error answer are the runtime's
(``daca.runtime.api.state``, ``daca.runtime.state.memory``); no rule is kept here. A publish
reaches the real in-memory broker, which drops it, as daprd's does, since nothing subscribes.

What the class adds sits at the transport, in front of the runtime: each request yields to the
event loop once (so concurrent callers interleave as they would over a network; the runtime's
in-process path never suspends by itself) and is counted (``requests``, ``bytes_sent``);
``down`` makes every request fail with a connection error, and ``fail_transactions`` answers
every transaction with the error the runtime gives a failing store, without forwarding it.
``partial_transactions`` runs a transaction without rollback, as daprd runs one on Redis
(each operation its own guarded script inside MULTI/EXEC): the operations are applied one
after another, each as a transaction of its own, those whose guard holds stay applied, and
any failure answers the whole transaction with ``ERR_STATE_TRANSACTION``. ``before_transaction``,
when set, is called with the keys a transaction writes before it is forwarded (another writer
acting between an app's read and its write). ``transactions``
counts the transactions sent, ``transaction_conflicts`` those the runtime refused. ``value``,
``put``, ``etag``, ``delete`` and ``keys`` read and write the state store directly, under the
key prefix the runtime gives the app's keys (``agent-memory-service||``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

import httpx

from daca.memory.settings import MemorySettings
from daca.runtime.api.app import build_app
from daca.runtime.api.common import RuntimeContext, error_response
from daca.runtime.config import DEFAULT_MAX_BODY_SIZE
from daca.runtime.errors import StateTransactionFailed
from daca.runtime.gojson import encode_value
from daca.runtime.registry import start_components
from daca.runtime.resources import Resources
from daca.runtime.state.base import DeleteRequest, SetRequest
from daca.runtime.state.memory import MemoryStateStore
from tests.fakes.runtime import component, unconnected_invoker

T = TypeVar("T")

_DEFAULTS = MemorySettings.model_fields
APP_ID: str = _DEFAULTS["app_id"].default
STORE: str = _DEFAULTS["state_store"].default
PUBSUB: str = _DEFAULTS["pubsub_name"].default
TRANSACTION_PATH = f"/v1.0/state/{STORE}/transaction"


def _at_once(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end now, from synchronous code (a test's polling condition).

    The in-memory backends suspend only to wait for their lock, and it is never held across a
    suspension (their critical sections do not await), so they finish in one step.
    """
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError("the in-memory backend suspended: it cannot be driven synchronously")


class FakeSidecar:
    """The runtime's sidecar API over in-memory components, with counters and faults in front."""

    def __init__(self) -> None:
        self.down = False
        #: The sidecar is down from the request after this many (``requests``) on.
        self.down_after: int | None = None
        self.fail_transactions = False
        self.partial_transactions = False
        self.before_transaction: Callable[[list[str]], None] | None = None
        self.transaction_conflicts = 0
        self.transactions = 0
        self.requests = 0
        self.bytes_sent = 0
        specs = (component(STORE, "state.in-memory"), component(PUBSUB, "pubsub.in-memory"))
        components = _at_once(start_components(specs, APP_ID, None))
        store = components.state_stores[STORE]
        assert isinstance(store, MemoryStateStore)
        self._store = store
        self._prefix = components.state_prefix(STORE)  # "agent-memory-service||"
        context = RuntimeContext(
            app_id=APP_ID,
            components=components,
            resources=Resources(components=specs),
            invoker=unconnected_invoker(APP_ID),
            ready=True,  # no app to wait for, as a sidecar started without one
        )
        self.app = build_app(context, max_body_size=DEFAULT_MAX_BODY_SIZE)  # daprd's 4 MiB

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The transport to hand to ``DaprClient``/``create_app``."""
        return _Transport(self, httpx.ASGITransport(app=self.app))

    def value(self, key: str) -> Any:
        """The stored value of the app's ``key`` (parsed), or ``None``."""
        item = _at_once(self._store.get(self._prefix + key))
        return None if item is None else json.loads(item.value)

    def etag(self, key: str) -> str | None:
        """The ETag of the app's ``key`` (a new one on every write), or ``None``."""
        item = _at_once(self._store.get(self._prefix + key))
        return None if item is None else item.etag

    def put(self, key: str, value: Any) -> None:
        """Seed the app's ``key``, encoded as the runtime's save encodes a value (a new ETag)."""
        data = encode_value(value, self._store.value_encoding)
        _at_once(self._store.set(SetRequest(self._prefix + key, data)))

    def delete(self, key: str) -> None:
        """Delete the app's ``key`` (no ETag: a missing key is no error)."""
        _at_once(self._store.delete(DeleteRequest(self._prefix + key)))

    def keys(self) -> set[str]:
        """The app's keys that hold a value. The store has no listing call: its dict's keys are
        read, each checked through ``get`` (which drops an expired item)."""
        stored = [key for key in self._store._items if key.startswith(self._prefix)]
        live = [key for key in stored if _at_once(self._store.get(key)) is not None]
        return {key.removeprefix(self._prefix) for key in live}


class _Transport(httpx.AsyncBaseTransport):
    """Counts, faults and a network hop in front of the runtime's ASGI app."""

    def __init__(self, sidecar: FakeSidecar, runtime: httpx.ASGITransport) -> None:
        self._sidecar = sidecar
        self._runtime = runtime

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sidecar = self._sidecar
        await asyncio.sleep(0)  # one yield, as a network hop
        sidecar.requests += 1
        sidecar.bytes_sent += len(request.content)
        if sidecar.down or (
            sidecar.down_after is not None and sidecar.requests > sidecar.down_after
        ):
            raise httpx.ConnectError("connection refused (sidecar down)", request=request)
        transaction = request.url.path == TRANSACTION_PATH
        sidecar.transactions += transaction
        if transaction and sidecar.fail_transactions:
            return _store_failure()
        if transaction and sidecar.before_transaction is not None:
            operations = json.loads(request.content)["operations"]
            sidecar.before_transaction([operation["request"]["key"] for operation in operations])
        if transaction and sidecar.partial_transactions:
            response = await self._without_rollback(request)
        else:
            response = await self._runtime.handle_async_request(request)
        if transaction and response.status_code == 500:
            await response.aread()
            if response.json().get("errorCode") == "ERR_STATE_TRANSACTION":
                sidecar.transaction_conflicts += 1
        return response

    async def _without_rollback(self, request: httpx.Request) -> httpx.Response:
        """The transaction's operations one by one, each a transaction of its own; the first
        failure's answer (after all were tried), or the last success's."""
        body = json.loads(request.content)
        failed: httpx.Response | None = None
        response = None
        for operation in body["operations"]:
            single = httpx.Request(
                request.method, request.url, headers={"content-type": "application/json"},
                content=json.dumps({**body, "operations": [operation]}).encode(),
            )  # fmt: skip
            response = await self._runtime.handle_async_request(single)
            await response.aread()
            if response.status_code >= 400 and failed is None:
                failed = response
        assert response is not None, "a transaction without operations"
        return failed or response


def _store_failure() -> httpx.Response:
    """What the runtime answers a transaction its store fails (``transact_state``)."""
    message = "error while executing state transaction: injected store failure"
    answer = error_response(StateTransactionFailed(message))
    return httpx.Response(
        answer.status_code, headers=answer.raw_headers, content=bytes(answer.body)
    )
