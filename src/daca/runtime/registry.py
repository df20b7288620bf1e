"""Builds backends from Component specs, starts and stops them, and finds them by name.

Backends register by component type (``state.redis`` ...) in ``_state_types`` /
``_pubsub_types``, and every one is built the same way: ``Backend.from_component(spec, *,
client=None)`` parses its settings from the spec once (``<Backend>Settings.from_spec``; the
in-memory state store has none); a test may inject a Redis client (the in-process backends have
nothing to inject). ``actorStateStore`` is read here, not by the backends: as in daprd, the
runtime adds the ``ACTOR`` capability, the same for every store.
Where a Redis component points at a loopback address and nothing listens there, the bundled
redis-server is started on that port (``BundledRedisPool``), once per port for the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from daca.runtime.errors import ComponentError
from daca.runtime.net import LOOPBACK_HOSTS, is_listening, split_host_port
from daca.runtime.pubsub.base import PubSub
from daca.runtime.redis_server import BundledRedis
from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import CAP_ACTOR, StateStore

logger = logging.getLogger(__name__)

StateFactory = Callable[[ComponentSpec], StateStore]
PubSubFactory = Callable[[ComponentSpec], PubSub]


def _state_types() -> dict[str, StateFactory]:
    from daca.runtime.state.memory import MemoryStateStore
    from daca.runtime.state.redis import RedisStateStore
    from daca.runtime.state.sqlite import SqliteStateStore

    return {
        "state.in-memory": MemoryStateStore.from_component,
        "state.redis": RedisStateStore.from_component,
        "state.sqlite": SqliteStateStore.from_component,
    }


def _pubsub_types() -> dict[str, PubSubFactory]:
    from daca.runtime.pubsub.memory import MemoryPubSub
    from daca.runtime.pubsub.redis import RedisPubSub

    return {
        "pubsub.in-memory": MemoryPubSub.from_component,
        "pubsub.redis": RedisPubSub.from_component,
    }


#: One lock per loopback port and event loop: two sidecars of ``daca up`` start their
#: components concurrently, and only the first may start a server on a silent port. (An
#: ``asyncio.Lock`` belongs to the loop it was first contended on; a process that runs loops
#: one after another, as tests do, gets fresh locks with each.)
_PORT_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def port_lock(port: int) -> asyncio.Lock:
    """The running loop's lock for starting a server on loopback ``port``."""
    return _PORT_LOCKS.setdefault(asyncio.get_running_loop(), {}).setdefault(port, asyncio.Lock())


class BundledRedisPool:
    """Bundled redis-servers started by this process, one per loopback port."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        self._servers: dict[int, BundledRedis] = {}

    async def ensure(self, spec: ComponentSpec) -> None:
        """Start the bundled server if ``spec``'s ``redisHost`` is loopback and silent (the
        loop keeps running while the server starts)."""
        host, port = split_host_port(spec.require("redisHost"))
        if host not in LOOPBACK_HOSTS or port in self._servers:
            return
        async with port_lock(port):
            if not is_listening(host, port):
                await self._start(spec, host, port)

    async def _start(self, spec: ComponentSpec, host: str, port: int) -> None:
        server = BundledRedis(port, self.data_root / str(port))
        logger.warning(
            "nothing listens on %s:%d for component %r: starting the bundled redis-server there",
            host,
            port,
            spec.name,
        )
        try:
            await server.astart()
        except (OSError, RuntimeError) as exc:
            raise spec.error(
                "redisHost", f"is not reachable and the bundled redis-server could not start: {exc}"
            ) from exc
        self._servers[port] = server

    async def stop(self) -> None:
        for server in self._servers.values():
            await server.astop()
        self._servers.clear()


@dataclass
class Components:
    """The started backends of one sidecar, by component name."""

    app_id: str
    specs: dict[str, ComponentSpec] = field(default_factory=dict)
    state_stores: dict[str, StateStore] = field(default_factory=dict)
    pubsubs: dict[str, PubSub] = field(default_factory=dict)
    #: State stores whose component sets ``actorStateStore``: as in daprd, the runtime (not the
    #: backend) reads that field, so every backend gets the ``ACTOR`` capability the same way.
    actor_state_stores: set[str] = field(default_factory=set)

    def state_prefix(self, store: str) -> str:
        """The key prefix daprd's ``keyPrefix`` strategy gives keys of ``store`` (with ``||``)."""
        strategy = self.specs[store].get("keyPrefix", "appid")
        if strategy == "none":
            return ""
        if strategy == "appid":
            prefix = self.app_id
        elif strategy == "name":
            prefix = store
        elif strategy == "namespace":
            namespace = os.environ.get("NAMESPACE", "")
            prefix = f"{namespace}.{self.app_id}" if namespace else self.app_id
        else:
            prefix = strategy.lower()
        return f"{prefix}||" if prefix else ""

    def capabilities(self, name: str) -> list[str]:
        store = self.state_stores.get(name)
        if store is None:
            return []
        actor = {CAP_ACTOR} if name in self.actor_state_stores else set()
        return sorted(store.capabilities | actor)

    async def close(self) -> None:
        for pubsub in self.pubsubs.values():
            await _close_quietly(pubsub)
        for store in self.state_stores.values():
            await _close_quietly(store)


async def _close_quietly(backend: StateStore | PubSub) -> None:
    try:
        await backend.close()
    except Exception:
        logger.exception("closing %s failed", type(backend).__name__)


async def start_components(
    specs: Iterable[ComponentSpec], app_id: str, redis_pool: BundledRedisPool | None
) -> Components:
    """Build and start every component; on any failure stop those started and raise."""
    components = Components(app_id=app_id)
    state_types, pubsub_types = _state_types(), _pubsub_types()
    try:
        for spec in specs:
            await _start_one(spec, components, state_types, pubsub_types, redis_pool)
    except BaseException:
        await components.close()
        raise
    return components


async def _start_one(
    spec: ComponentSpec,
    components: Components,
    state_types: dict[str, StateFactory],
    pubsub_types: dict[str, PubSubFactory],
    redis_pool: BundledRedisPool | None,
) -> None:
    if spec.type not in state_types and spec.type not in pubsub_types:
        known = ", ".join(sorted([*state_types, *pubsub_types]))
        raise ComponentError(
            f"{spec.source}: component {spec.name!r}: field 'spec.type': {spec.type!r} is not "
            f"a component type this runtime supports ({known})"
        )
    if spec.type.endswith(".redis") and redis_pool is not None:
        await redis_pool.ensure(spec)
    components.specs[spec.name] = spec
    if spec.type in state_types:
        if spec.get_bool("actorStateStore"):
            components.actor_state_stores.add(spec.name)
        store = state_types[spec.type](spec)
        await store.start()
        components.state_stores[spec.name] = store
    else:
        pubsub = pubsub_types[spec.type](spec)
        await pubsub.start()
        components.pubsubs[spec.name] = pubsub
    logger.info("component %r (%s) started", spec.name, spec.type)
