"""The pub/sub contract, run against every backend (Redis needs the bundled redis-server)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from daca.runtime.pubsub.base import Message, PubSub
from daca.runtime.pubsub.memory import MemoryPubSub
from daca.runtime.pubsub.redis import RedisPubSub
from daca.runtime.resources import ComponentSpec

TIMEOUT = 10.0
_topics = itertools.count()


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` every 10 ms until it holds; fail after ``TIMEOUT`` seconds."""
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.01)


class Backend:
    """Builds started brokers of one kind; ``peer`` is another runtime sharing the broker."""

    def __init__(self, kind: str, redis_url: str | None) -> None:
        self.kind = kind
        self.redis_url = redis_url
        self.made: list[PubSub] = []

    async def make(self, **metadata: str) -> PubSub:
        spec = ComponentSpec(
            name="pubsub",
            type=f"pubsub.{self.kind}",
            version="v1",
            metadata=self._metadata(metadata),
            source="test.yaml",
        )
        cls: Any = RedisPubSub if self.kind == "redis" else MemoryPubSub
        pubsub: PubSub = cls.from_component(spec)
        pubsub.drain_timeout = 0.5
        await pubsub.start()
        self.made.append(pubsub)
        return pubsub

    async def peer(self, pubsub: PubSub, **metadata: str) -> PubSub:
        """A second runtime: a new Redis client, or the same in-process broker."""
        return await self.make(**metadata) if self.kind == "redis" else pubsub

    def _metadata(self, extra: dict[str, str]) -> dict[str, str]:
        base = {"redeliverInterval": "100ms", "processingTimeout": "200ms"}
        if self.redis_url is not None:
            base["redisHost"] = self.redis_url
        return base | extra


@pytest_asyncio.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.redis)],
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made = Backend("redis" if request.param == "redis" else "in-memory", redis_url)
    yield made
    for pubsub in made.made:
        await pubsub.close()


def topic() -> str:
    return f"orders-{next(_topics)}"


class Recorder:
    """A handler that records what it receives; ``gate`` holds every handler until set."""

    def __init__(self, *, gated: bool = False, fail_first: int = 0) -> None:
        self.received: list[Message] = []
        self.completed: list[Message] = []
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self._failures_left = fail_first
        if not gated:
            self.gate.set()

    async def __call__(self, message: Message) -> None:
        self.received.append(message)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            if self._failures_left > 0:
                self._failures_left -= 1
                raise RuntimeError("handler failed on purpose")
        finally:
            self.in_flight -= 1
        self.completed.append(message)


async def test_publish_delivers_same_bytes_and_metadata(backend: Backend) -> None:
    pubsub, name, recorder = await backend.make(), topic(), Recorder()
    await pubsub.subscribe(name, recorder, group="app", concurrency=1)
    payload = b'{"specversion":"1.0","data":"\xc3\xa9"}'
    await pubsub.publish(name, payload, {"traceparent": "00-abc-01", "rawPayload": "false"})

    await wait_until(lambda: len(recorder.completed) == 1)
    message = recorder.completed[0]
    assert (message.topic, message.data) == (name, payload)
    assert message.metadata == {"traceparent": "00-abc-01", "rawPayload": "false"}
    assert message.id


async def test_every_group_gets_every_message(backend: Backend) -> None:
    pubsub, name = await backend.make(), topic()
    first, second = Recorder(), Recorder()
    await pubsub.subscribe(name, first, group="billing", concurrency=2)
    await pubsub.subscribe(name, second, group="shipping", concurrency=2)
    for i in range(5):
        await pubsub.publish(name, f"m{i}".encode(), {})

    await wait_until(lambda: len(first.completed) == 5 and len(second.completed) == 5)
    expected = {f"m{i}".encode() for i in range(5)}
    assert {m.data for m in first.completed} == expected
    assert {m.data for m in second.completed} == expected


async def test_subscribers_in_one_group_split_messages(backend: Backend) -> None:
    pubsub, name = await backend.make(queueDepth="1"), topic()
    other = await backend.peer(pubsub, queueDepth="1")
    first, second = Recorder(gated=True), Recorder(gated=True)
    await pubsub.subscribe(name, first, group="app", concurrency=1)
    await other.subscribe(name, second, group="app", concurrency=1)
    for i in range(10):
        await pubsub.publish(name, f"m{i}".encode(), {})

    await wait_until(lambda: first.in_flight == 1 and second.in_flight == 1)
    first.gate.set()
    second.gate.set()
    await wait_until(lambda: len(first.completed) + len(second.completed) == 10)
    delivered = Counter(m.data for m in first.received + second.received)
    assert delivered == Counter(f"m{i}".encode() for i in range(10))


async def test_failed_handler_gets_the_message_again(backend: Backend) -> None:
    pubsub, name, recorder = await backend.make(), topic(), Recorder(fail_first=2)
    await pubsub.subscribe(name, recorder, group="app", concurrency=1)
    await pubsub.publish(name, b"retry me", {})

    await wait_until(lambda: len(recorder.completed) == 1)
    assert [m.data for m in recorder.received] == [b"retry me"] * 3
    assert len({m.id for m in recorder.received}) == 1


async def test_concurrency_limit_is_respected(backend: Backend) -> None:
    pubsub, name, recorder = await backend.make(), topic(), Recorder(gated=True)
    await pubsub.subscribe(name, recorder, group="app", concurrency=3)
    for i in range(8):
        await pubsub.publish(name, f"m{i}".encode(), {})

    await wait_until(lambda: recorder.in_flight == 3)
    recorder.gate.set()
    await wait_until(lambda: len(recorder.completed) == 8)
    assert recorder.max_in_flight == 3


async def test_close_waits_for_handlers_in_flight(backend: Backend) -> None:
    pubsub, name, recorder = await backend.make(), topic(), Recorder(gated=True)
    subscription = await pubsub.subscribe(name, recorder, group="app", concurrency=1)
    await pubsub.publish(name, b"slow", {})
    await wait_until(lambda: recorder.in_flight == 1)

    closing = asyncio.create_task(subscription.close())
    done, _ = await asyncio.wait({closing}, timeout=0.2)  # drain_timeout is 0.5s
    assert not done
    recorder.gate.set()
    await asyncio.wait_for(closing, TIMEOUT)
    assert [m.data for m in recorder.completed] == [b"slow"]


async def test_close_stops_delivery(backend: Backend) -> None:
    pubsub, name = await backend.make(), topic()
    closed, still_open = Recorder(), Recorder()
    subscription = await pubsub.subscribe(name, closed, group="closed", concurrency=1)
    await pubsub.subscribe(name, still_open, group="open", concurrency=1)
    await pubsub.publish(name, b"before", {})
    await wait_until(lambda: len(closed.completed) == 1 and len(still_open.completed) == 1)

    await subscription.close()
    await pubsub.publish(name, b"after", {})
    await wait_until(lambda: len(still_open.completed) == 2)
    assert [m.data for m in closed.received] == [b"before"]


async def test_publish_after_close_fails_loudly(backend: Backend) -> None:
    pubsub = await backend.make()
    await pubsub.close()
    with pytest.raises(RuntimeError):
        await pubsub.publish(topic(), b"x", {})


async def test_memory_drops_messages_nobody_subscribes_to() -> None:
    pubsub = MemoryPubSub.from_component(
        ComponentSpec("p", "pubsub.in-memory", "v1", {"redeliverInterval": "50ms"}, "test.yaml")
    )
    await pubsub.start()
    name, recorder = topic(), Recorder()
    await pubsub.publish(name, b"lost", {})
    await pubsub.subscribe(name, recorder, group="app", concurrency=1)
    await pubsub.publish(name, b"kept", {})
    await wait_until(lambda: len(recorder.completed) == 1)
    await pubsub.close()
    assert [m.data for m in recorder.received] == [b"kept"]


def test_memory_reads_its_metadata() -> None:
    spec = ComponentSpec(
        name="pubsub",
        type="pubsub.in-memory",
        version="v1",
        metadata={"redeliverInterval": "250ms", "concurrency": "4"},
        source="test.yaml",
    )
    pubsub = MemoryPubSub.from_component(spec)
    assert (pubsub.settings.redeliver_interval, pubsub.settings.concurrency) == (0.25, 4)
    defaults = MemoryPubSub.from_component(
        ComponentSpec("p", "pubsub.in-memory", "v1", {}, "test.yaml")
    )
    assert (defaults.settings.redeliver_interval, defaults.settings.concurrency) == (1.0, 10)
