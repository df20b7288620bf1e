"""Redis Streams backend: the wire layout daprd shares, and redelivery across runtimes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daca.runtime.errors import ComponentError, StoreError
from daca.runtime.net import free_port, split_host_port
from daca.runtime.pubsub.base import Message
from daca.runtime.pubsub.redis import RedisPubSub
from daca.runtime.pubsub.redis_settings import RedisPubSubSettings
from daca.runtime.redis_server import BundledRedis
from daca.runtime.resources import ComponentSpec

pytestmark = pytest.mark.redis

TIMEOUT = 10.0


async def eventually(probe: Callable[[], bool | Awaitable[bool]]) -> None:
    """Poll ``probe`` every 10 ms until it holds; fail after ``TIMEOUT`` seconds."""
    async with asyncio.timeout(TIMEOUT):
        while not await _truth(probe()):
            await asyncio.sleep(0.01)


async def _truth(value: bool | Awaitable[bool]) -> bool:
    return value if isinstance(value, bool) else await value


def spec_for(address: str, **metadata: str) -> ComponentSpec:
    return ComponentSpec(
        name="pubsub",
        type="pubsub.redis",
        version="v1",
        metadata={"redisHost": address, **metadata},
        source="test.yaml",
    )


@pytest_asyncio.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    host, port = split_host_port(redis_url)
    client = Redis(host=host, port=port)
    yield client
    await client.aclose()


class Make(Protocol):
    async def __call__(self, *, drain_timeout: float = 0.5, **metadata: str) -> RedisPubSub: ...


@pytest_asyncio.fixture
async def make(redis_url: str) -> AsyncIterator[Make]:
    """Builds started brokers on the session's Redis and closes them after the test."""
    made: list[RedisPubSub] = []

    async def factory(*, drain_timeout: float = 0.5, **metadata: str) -> RedisPubSub:
        pubsub = RedisPubSub.from_component(spec_for(redis_url, **metadata))
        pubsub.drain_timeout = drain_timeout
        await pubsub.start()
        made.append(pubsub)
        return pubsub

    yield factory
    for pubsub in made:
        await pubsub.close()


async def pending_count(raw: Redis, topic: str, group: str) -> int:
    summary: Any = await raw.xpending(topic, group)
    return int(summary["pending"])


async def nothing_pending(raw: Redis, topic: str, group: str) -> bool:
    return await pending_count(raw, topic, group) == 0


async def idle_ms(raw: Redis, topic: str, group: str) -> int:
    """How long the oldest pending entry has been idle (since delivered or claimed)."""
    rows: Any = await raw.xpending_range(topic, group, "-", "+", 1)
    return int(rows[0]["time_since_delivered"])


async def test_wire_layout_matches_daprd(make: Make, raw: Redis) -> None:
    pubsub = await make()
    await pubsub.publish("orders", b'{"id":1}', {"traceparent": "00-abc-01"})

    entries: Any = await raw.xrange("orders")
    [(_entry_id, fields)] = entries
    assert list(fields) == [b"data", b"metadata"]
    assert fields[b"data"] == b'{"id":1}'
    assert json.loads(fields[b"metadata"]) == {"traceparent": "00-abc-01"}


async def test_group_and_consumer_names(make: Make, raw: Redis) -> None:
    pubsub = await make(consumerID="custom")
    received: list[Message] = []

    async def handler(message: Message) -> None:
        received.append(message)

    await pubsub.subscribe("orders", handler, group="app-id", concurrency=1)
    await pubsub.publish("orders", b"x", {})
    await eventually(lambda: len(received) == 1)
    [group] = await raw.xinfo_groups("orders")
    assert group["name"] == b"custom"
    [consumer] = await raw.xinfo_consumers("orders", "custom")
    assert consumer["name"] == b"custom"


async def test_new_group_reads_existing_stream_from_start(make: Make, raw: Redis) -> None:
    await raw.xadd("orders", {"data": b"written by daprd", "metadata": b"{}"})
    pubsub = await make()
    received: list[Message] = []

    async def handler(message: Message) -> None:
        received.append(message)

    await pubsub.subscribe("orders", handler, group="late-app", concurrency=1)
    await eventually(lambda: len(received) == 1)
    assert received[0].data == b"written by daprd"
    assert received[0].metadata == {}
    await eventually(lambda: nothing_pending(raw, "orders", "late-app"))


async def _at_least(value: Awaitable[int], limit: float) -> bool:
    return await value >= limit


async def test_failed_entry_is_acked_after_success(make: Make, raw: Redis) -> None:
    pubsub = await make(processingTimeout="150", redeliverInterval="50")
    attempts: list[str] = []

    async def handler(message: Message) -> None:
        attempts.append(message.id)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")

    await pubsub.subscribe("orders", handler, group="app", concurrency=1)
    await pubsub.publish("orders", b"x", {})
    await eventually(lambda: len(attempts) == 2)
    await eventually(lambda: nothing_pending(raw, "orders", "app"))
    assert attempts[0] == attempts[1]


async def xack_calls(raw: Redis) -> int:
    stats: Any = await raw.info("commandstats")
    return int(stats.get("cmdstat_xack", {}).get("calls", 0))


async def test_entries_settled_together_are_acknowledged_in_one_xack(
    make: Make, raw: Redis
) -> None:
    """Handlers that return in the same turn of the loop (as a bulk delivery's do) share one
    XACK, and every entry is acknowledged."""
    pubsub = await make()
    gate, arrived = asyncio.Event(), []

    async def handler(message: Message) -> None:
        arrived.append(message.id)
        await gate.wait()

    await pubsub.subscribe("orders", handler, group="app", concurrency=20)
    for n in range(20):
        await pubsub.publish("orders", str(n).encode(), {})
    await eventually(lambda: len(arrived) == 20)
    before = await xack_calls(raw)
    gate.set()
    await eventually(lambda: nothing_pending(raw, "orders", "app"))
    assert await xack_calls(raw) - before == 1


async def test_pending_entry_survives_a_dead_runtime(make: Make, raw: Redis) -> None:
    dead = await make(drain_timeout=0.05, processingTimeout="300ms", redeliverInterval="50ms")
    started = asyncio.Event()

    async def never_finishes(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()

    await dead.subscribe("orders", never_finishes, group="app", concurrency=1)
    await dead.publish("orders", b"important", {})
    await asyncio.wait_for(started.wait(), TIMEOUT)
    await dead.close()  # the runtime dies with the handler unfinished
    assert await pending_count(raw, "orders", "app") == 1

    survivor = await make(processingTimeout="300ms", redeliverInterval="50ms")
    received: list[Message] = []

    async def handler(message: Message) -> None:
        received.append(message)

    await survivor.subscribe("orders", handler, group="app", concurrency=1)
    await eventually(lambda: len(received) == 1)
    assert received[0].data == b"important"
    await eventually(lambda: nothing_pending(raw, "orders", "app"))


async def test_slow_handler_is_not_delivered_twice(make: Make, raw: Redis) -> None:
    pubsub = await make(processingTimeout="200ms", redeliverInterval="50ms")
    deliveries: list[str] = []
    release = asyncio.Event()

    async def slow(message: Message) -> None:
        deliveries.append(message.id)
        await release.wait()

    await pubsub.subscribe("orders", slow, group="app", concurrency=2)
    await pubsub.publish("orders", b"slow", {})
    await eventually(lambda: len(deliveries) == 1)
    # Idle past processingTimeout plus several reclaim rounds: had the entry been reclaimed,
    # XCLAIM would have reset its idle time.
    limit_ms = 1000 * (pubsub.processing_timeout + 4 * pubsub.settings.redeliver_interval)
    await eventually(lambda: _at_least(idle_ms(raw, "orders", "app"), limit_ms))
    release.set()
    await eventually(lambda: nothing_pending(raw, "orders", "app"))
    assert len(deliveries) == 1


async def test_deleted_pending_entry_is_acked(make: Make, raw: Redis) -> None:
    pubsub = await make(processingTimeout="100ms", redeliverInterval="50ms")
    attempts: list[Message] = []

    async def failing(message: Message) -> None:
        attempts.append(message)
        raise RuntimeError("always fails")

    await pubsub.subscribe("orders", failing, group="app", concurrency=1)
    await pubsub.publish("orders", b"doomed", {})
    await eventually(lambda: len(attempts) == 1)
    await raw.xdel("orders", attempts[0].id)
    await eventually(lambda: nothing_pending(raw, "orders", "app"))


async def test_an_injected_client_is_used_and_left_open(redis_url: str, raw: Redis) -> None:
    pubsub = RedisPubSub.from_component(spec_for(redis_url), client=raw)
    await pubsub.start()
    received: list[Message] = []

    async def handler(message: Message) -> None:
        received.append(message)

    try:
        assert pubsub.client is raw
        await pubsub.subscribe("injected", handler, group="app", concurrency=1)
        await pubsub.publish("injected", b"x", {})
        await eventually(lambda: len(received) == 1)
    finally:
        await pubsub.close()
    assert await raw.ping()
    assert await raw.xlen("injected") == 1


async def test_publish_to_unreachable_redis_raises_store_error(tmp_path: Path) -> None:
    server = BundledRedis(free_port(), tmp_path, persistent=False)
    await server.astart()
    pubsub = RedisPubSub.from_component(spec_for(server.address))
    await pubsub.start()
    try:
        await server.astop()
        with pytest.raises(StoreError) as caught:
            await pubsub.publish("orders", b"x", {})
        assert caught.value.__cause__ is not None
    finally:
        await pubsub.close()


async def test_subscription_survives_a_redis_restart(tmp_path: Path) -> None:
    server = BundledRedis(free_port(), tmp_path, persistent=False)
    await server.astart()
    pubsub = RedisPubSub.from_component(spec_for(server.address, readTimeout="100ms"))
    await pubsub.start()
    received: list[Message] = []

    async def handler(message: Message) -> None:
        received.append(message)

    try:
        await pubsub.subscribe("orders", handler, group="app", concurrency=1)
        await server.astop()
        await server.astart()  # empty again: the loop must recreate its group
        await pubsub.publish("orders", b"after restart", {})
        await eventually(lambda: len(received) == 1)
        assert received[0].data == b"after restart"
    finally:
        await pubsub.close()
        await server.astop()


async def test_unreachable_at_start_names_redis_host() -> None:
    pubsub = RedisPubSub.from_component(spec_for(f"127.0.0.1:{free_port()}"))
    with pytest.raises(ComponentError, match="redisHost"):
        await pubsub.start()


def test_settings_defaults_and_durations() -> None:
    defaults = RedisPubSubSettings.from_spec(spec_for("localhost:6380"))
    assert (defaults.connection.address, defaults.consumer_id) == ("localhost:6380", "")
    assert (defaults.queue_depth, defaults.concurrency) == (100, 10)
    assert (defaults.processing_timeout, defaults.redeliver_interval) == (60.0, 15.0)
    tuned = RedisPubSubSettings.from_spec(
        spec_for("h:1", processingTimeout="1500", redeliverInterval="1m30s", maxLenApprox="1000")
    )
    assert (tuned.processing_timeout, tuned.redeliver_interval) == (1.5, 90.0)
    assert tuned.max_len_approx == 1000
    assert not RedisPubSubSettings.from_spec(spec_for("h:1", redeliverInterval="0")).reclaim_enabled


@pytest.mark.parametrize(
    ("field", "value"), [("processingTimeout", "soon"), ("concurrency", "0"), ("redisDB", "x")]
)
def test_bad_metadata_names_the_field(field: str, value: str) -> None:
    with pytest.raises(ComponentError, match=field):
        RedisPubSubSettings.from_spec(spec_for("h:1", **{field: value}))


def test_redis_host_is_required() -> None:
    spec = ComponentSpec("pubsub", "pubsub.redis", "v1", {}, "test.yaml")
    with pytest.raises(ComponentError, match="redisHost"):
        RedisPubSub.from_component(spec)
