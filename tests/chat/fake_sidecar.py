"""The chat tests' Dapr sidecar: the daca runtime's own state API and outbox, plus a fake memory
service, behind one ``httpx`` transport.

State: every request under ``/v1.0/state/chat-statestore`` is forwarded, in process, to the
runtime's sidecar API app (``daca.runtime.api.app.build_app``, through ``httpx.ASGITransport``)
over the runtime's ``state.in-memory`` and ``pubsub.in-memory`` components, for app-id
``chat-service``. The store is configured for the transactional outbox with the ``outbox*``
metadata of the real component (``components/chat-statestore.yaml``), and the runtime's
:class:`~daca.runtime.outbox.Outbox` runs as the sidecar runs it. ETags, first-write, bulk get,
transactions, the outbox and every error answer are the runtime's; no rule is kept here. The
events the outbox publishes to ``pubsub``/``conversations`` are received by a subscriber on that
topic and recorded in ``published`` (each CloudEvent's ``data``), a few milliseconds after their
transaction commits, as with daprd: wait for them with ``wait_for_published``.

The runtime runs on its own event loop in a daemon thread, as a sidecar runs in its own process:
the chat apps under test (``TestClient`` runs each on a loop of its own, in another thread) call
it across loops, and the tests' synchronous helpers (``value``, ``etag``, ``put``, ``keys``) run
there too, so the store is only ever touched from its loop. ``close`` (or garbage collection)
stops it.

In front of the runtime, at the transport: the counters (``state_requests``, ``commit_attempts``,
``invocations``), the ``on_state_read`` hook, the ``require_concurrent_reads`` rendezvous, and
``commit_failures`` (a transaction fails as if the sidecar were unreachable, without reaching the
runtime, that many times; -1: always).

Memory service: ``/v1.0/invoke/agent-memory-service/method/...`` is served from ``users``,
``histories`` and ``facts`` (its session listing and forgetting read the chat's session records
from the state store), with ``memory_mode`` faults: the memory service down (500
``ERR_DIRECT_INVOKE``), erroring, hanging, answering garbage, or the sidecar unreachable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import weakref
from collections.abc import Callable, Coroutine
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from daca.chat.settings import ChatSettings
from daca.runtime.api.app import build_app
from daca.runtime.api.common import RuntimeContext
from daca.runtime.config import DEFAULT_MAX_BODY_SIZE
from daca.runtime.gojson import encode_value
from daca.runtime.loader import load_resources
from daca.runtime.outbox import Outbox, OutboxConfig
from daca.runtime.pubsub.base import Message, Subscription
from daca.runtime.registry import Components, start_components
from daca.runtime.resources import ComponentSpec, Resources
from daca.runtime.state.base import SetRequest
from daca.runtime.state.memory import MemoryStateStore
from tests.fakes.runtime import component, unconnected_invoker

T = TypeVar("T")

MemoryMode = Literal["up", "down", "error", "hang", "unreachable", "garbage"]

APP_ID = "chat-service"  # the chat's app-id (dapr.yaml)
STORE: str = ChatSettings.model_fields["state_store"].default  # "chat-statestore"
COMPONENTS = Path(__file__).resolve().parents[2] / "components"
INVOKE_PREFIX = "/v1.0/invoke/agent-memory-service/method/"
STATE_PREFIX = f"/v1.0/state/{STORE}"
TRANSACTION = "/transaction"
#: How long the runtime's loop may take over one call from a test (seconds).
CALL_TIMEOUT = 10.0


@dataclasses.dataclass
class Published:
    """One event the outbox published: pubsub, topic and the CloudEvent's ``data``."""

    pubsub: str
    topic: str
    data: dict[str, Any]


@cache
def _store_spec() -> ComponentSpec:
    """The chat's state store as the runtime's in-memory store, with the real component's
    outbox metadata (and key prefix strategy, should it set one)."""
    real = next(c for c in load_resources([COMPONENTS], APP_ID).components if c.name == STORE)
    kept = {k: v for k, v in real.metadata.items() if k.startswith("outbox") or k == "keyPrefix"}
    if OutboxConfig.from_component(real) is None:
        raise RuntimeError(f"{real.source}: {STORE} configures no outbox")
    return dataclasses.replace(real, type="state.in-memory", metadata=kept, source=__file__)


class _Recorder:
    """Subscribes to the outbox's publish topic; records each event and wakes the waiters."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.changed = threading.Condition()

    async def receive(self, message: Message) -> None:
        event = json.loads(message.data)
        with self.changed:
            self.published.append(Published(event["pubsubname"], event["topic"], event["data"]))
            self.changed.notify_all()


class _Runtime:
    """The runtime's components, outbox and sidecar API app on an event loop in a thread.

    Holds no reference to the :class:`FakeSidecar`, so an abandoned one is collected (and its
    finalizer stops this).
    """

    def __init__(self, recorder: _Recorder) -> None:
        self._recorder = recorder
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-chat-sidecar", daemon=True
        )
        self._thread.start()
        self._subscription: Subscription | None = None
        self.call(self._start())

    async def _start(self) -> None:
        spec = _store_spec()
        config = OutboxConfig.from_component(spec)
        assert config is not None
        specs = (spec, component(config.publish_pubsub, "pubsub.in-memory"))
        self.components: Components = await start_components(specs, APP_ID, None)
        for pubsub in self.components.pubsubs.values():
            # An internal message whose transaction failed waits up to 10 s for its marker:
            # do not wait for it at close.
            pubsub.drain_timeout = 0.1
        store = self.components.state_stores[STORE]
        assert isinstance(store, MemoryStateStore)
        self.store = store
        self.prefix = self.components.state_prefix(STORE)  # "chat-service||"
        # As daca.runtime.sidecar wires it: the outbox subscribes to its internal topic.
        self.outbox = Outbox(
            APP_ID, [config], self.components.pubsubs, self.components.state_stores
        )
        await self.outbox.start()
        self._subscription = await self.components.pubsubs[config.publish_pubsub].subscribe(
            config.publish_topic, self._recorder.receive, group="chat-tests", concurrency=1
        )
        context = RuntimeContext(
            app_id=APP_ID,
            components=self.components,
            resources=Resources(components=specs),
            invoker=unconnected_invoker(APP_ID),
            outbox=self.outbox,
            ready=True,  # no app to wait for, as a sidecar started without one
        )
        app = build_app(context, max_body_size=DEFAULT_MAX_BODY_SIZE)  # daprd's 4 MiB
        self.asgi = httpx.ASGITransport(app=app)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the runtime's loop and wait for it (from any other thread)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a blocking call from the runtime's own loop would deadlock")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT)

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await ``coroutine`` run on the runtime's loop, from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    async def forward(self, request: httpx.Request) -> httpx.Response:
        """The runtime API's answer (its body read in full) to ``request``."""
        return await self.run(self.asgi.handle_async_request(request))

    async def records(self) -> dict[str, Any]:
        """The app's keys that hold a value, with their values (parsed). The store has no
        listing call: its dict's keys are read, each checked through ``get`` (which drops an
        expired item). Runs on the runtime's loop."""
        stored = [key for key in self.store._items if key.startswith(self.prefix)]
        found = {}
        for key in stored:
            item = await self.store.get(key)
            if item is not None:
                found[key.removeprefix(self.prefix)] = json.loads(item.value)
        return found

    def stop(self) -> None:
        """Close the subscriptions and components, then the loop and its thread."""
        if self._loop.is_closed():
            return
        if self._loop.is_running():
            self.call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT)
        self._loop.close()

    async def _close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        await self.outbox.close()
        await self.components.close()


class FakeSidecar:
    """The runtime's state API and outbox, a fake memory service, counters and faults."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.histories: dict[str, list[dict[str, Any]]] = {}
        self.facts: dict[str, list[dict[str, Any]]] = {}
        self.memory_mode: MemoryMode = "up"
        #: Transactions to fail as if the sidecar were unreachable (-1: all of them).
        self.commit_failures = 0
        self.require_concurrent_reads = False
        #: Transaction requests seen (failed ones included).
        self.commit_attempts = 0
        self.invocations: list[httpx.Request] = []
        #: Each state request, as ``"GET /key"``, ``"POST /transaction"`` and so on.
        self.state_requests: list[str] = []
        #: Called once, right after the next state read is answered (then cleared).
        self.on_state_read: Callable[[], None] | None = None
        self._arrived = 0
        self._both_arrived: asyncio.Event | None = None
        self._recorder = _Recorder()
        self._runtime = _Runtime(self._recorder)
        self._finalizer = weakref.finalize(self, self._runtime.stop)

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The transport to give the app as its sidecar."""
        return _Transport(self)

    @property
    def published(self) -> list[Published]:
        """The events the outbox published so far, in order."""
        return self._recorder.published

    def close(self) -> None:
        """Stop the runtime (its loop and thread)."""
        self._finalizer()

    def wait_for_published(self, count: int, timeout: float = 10.0) -> list[Published]:
        """Block until ``count`` events were published (or fail after ``timeout``)."""
        recorder = self._recorder
        with recorder.changed:
            if not recorder.changed.wait_for(lambda: len(recorder.published) >= count, timeout):
                raise AssertionError(f"only {len(recorder.published)} of {count} events published")
            return list(recorder.published)

    def value(self, key: str) -> Any:
        """The stored value of the chat's ``key`` (parsed), or ``None``."""
        item = self._runtime.call(self._runtime.store.get(self._runtime.prefix + key))
        return None if item is None else json.loads(item.value)

    def etag(self, key: str) -> str | None:
        """The ETag of the chat's ``key`` (a new one on every write), or ``None``."""
        item = self._runtime.call(self._runtime.store.get(self._runtime.prefix + key))
        return None if item is None else item.etag

    def put(self, key: str, value: Any) -> None:
        """Write the chat's ``key`` as the runtime's save encodes a value (a new ETag), as
        another writer would."""
        store = self._runtime.store
        data = encode_value(value, store.value_encoding)
        self._runtime.call(store.set(SetRequest(self._runtime.prefix + key, data)))

    def keys(self) -> set[str]:
        """The chat's keys that hold a value."""
        return set(self._runtime.call(self._runtime.records()))

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
        return await self._memory_route(request, method)

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

    async def _memory_route(self, request: httpx.Request, method: str) -> httpx.Response:
        """``memories/{user}`` (GET, and DELETE: forget), ``memories/{user}/context``,
        ``memories/{user}/sessions`` and ``conversations/{session}?limit=N``."""
        kind, _, key = method.partition("/")
        user, _, rest = key.partition("/")
        if kind == "memories" and rest == "context":
            return httpx.Response(200, json=self._context(user, request.url.params))
        if kind == "memories" and rest.startswith("facts"):
            return self._facts_route(request, user, rest.removeprefix("facts").strip("/"))
        if kind == "memories" and rest == "sessions":
            sessions = await self._sessions(user)
            return httpx.Response(200, json={"user_id": user, "sessions": sessions})
        if kind == "memories" and request.method == "DELETE":
            self.users.pop(key, None)
            sessions = sorted(value["session_id"] for value in await self._session_records(key))
            forgotten = {"status": "forgotten", "user_id": key, "sessions": sessions}
            return httpx.Response(200, json=forgotten | {"records_deleted": len(sessions)})
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

    async def _session_records(self, user: str) -> list[dict[str, Any]]:
        """The chat's session records (``session:{id}``) of ``user``, from its state store."""
        records = await self._runtime.run(self._runtime.records())
        return [
            value for name, value in records.items()
            if name.startswith("session:") and isinstance(value, dict)
            and value.get("user_id") == user
        ]  # fmt: skip

    async def _sessions(self, user: str) -> list[dict[str, Any]]:
        """The user's sessions, from the chat's own session records (newest first)."""
        found = []
        for value in await self._session_records(user):
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

    async def _state(self, request: httpx.Request, rest: str) -> httpx.Response:
        """Count and fault a state request, then have the runtime answer it."""
        self.state_requests.append(f"{request.method} {rest}")
        if self.require_concurrent_reads and rest.startswith("/session:"):
            await self._rendezvous()
        if rest == TRANSACTION:
            self.commit_attempts += 1
            if self.commit_failures != 0:
                self.commit_failures -= 1 if self.commit_failures > 0 else 0
                raise httpx.ConnectError("sidecar unreachable", request=request)
        response = await self._runtime.forward(request)
        if request.method == "GET" and self.on_state_read is not None:
            hook, self.on_state_read = self.on_state_read, None
            hook()
        return response


class _Transport(httpx.AsyncBaseTransport):
    """Routes the chat's sidecar requests: memory invocations to the fake memory service,
    state to the runtime; anything else is a 404."""

    def __init__(self, sidecar: FakeSidecar) -> None:
        self._sidecar = sidecar

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith(INVOKE_PREFIX):
            return await self._sidecar._invoke(request, path.removeprefix(INVOKE_PREFIX))
        if path.startswith(STATE_PREFIX):
            return await self._sidecar._state(request, path.removeprefix(STATE_PREFIX))
        return httpx.Response(404, json={"errorCode": "ERR_NOT_FOUND", "message": path})
