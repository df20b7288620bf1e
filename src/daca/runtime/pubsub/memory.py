"""In-process pub/sub broker (``pubsub.in-memory``).

Like daprd's in-memory broker it lives inside one runtime process and drops messages published
to a topic nobody subscribes to. Unlike daprd's, it loses nothing once a message is queued:

- each (topic, group) has its own queue; every group gets every message, and the subscribers of
  one group share that group's messages;
- each subscription runs up to ``concurrency`` handlers at once (the caller's value; when it is 0
  or less, the ``concurrency`` component metadata, default 10);
- a handler that raises gets its message queued again after ``redeliverInterval`` (component
  metadata, a duration, default **1s** here; daprd's in-memory broker never redelivers);
- a handler cancelled by ``close`` gets its message queued again at once, for the group's other
  subscribers. A group whose subscribers have all closed keeps its queue until one subscribes again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass

from daca.runtime.durations import parse_duration
from daca.runtime.pubsub.base import Handler, Message, PubSub, Subscription
from daca.runtime.pubsub.workers import DEFAULT_CONCURRENCY, Workers
from daca.runtime.resources import ComponentSpec

logger = logging.getLogger(__name__)

DEFAULT_REDELIVER_INTERVAL = 1.0


class _Group:
    """One consumer group of one topic: its queue and how many subscriptions read it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.subscribers = 0


class _MemorySubscription(Subscription):
    def __init__(self, broker: MemoryPubSub, group: _Group, handler: Handler, size: int) -> None:
        self._broker = broker
        self._group = group
        self._handler = handler
        self._workers = Workers(group.queue, self._deliver, size)
        self._closed = False

    def start(self) -> None:
        self._group.subscribers += 1
        self._workers.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._group.subscribers -= 1
        await self._workers.stop(self._broker.drain_timeout)
        self._broker.forget(self)

    async def _deliver(self, message: Message) -> None:
        try:
            await self._handler(message)
        except asyncio.CancelledError:
            self._group.queue.put_nowait(message)
            raise
        except Exception as exc:
            logger.warning(
                "handler failed for %s message %s (%s); redelivering in %.3gs",
                message.topic,
                message.id,
                type(exc).__name__,
                self._broker.settings.redeliver_interval,
            )
            self._broker.redeliver_later(self._group.queue, message)


@dataclass(frozen=True, slots=True)
class MemoryPubSubSettings:
    """The component metadata: ``redeliverInterval`` (a duration) and ``concurrency``."""

    redeliver_interval: float = DEFAULT_REDELIVER_INTERVAL
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def from_spec(cls, spec: ComponentSpec) -> MemoryPubSubSettings:
        raw = spec.get("redeliverInterval")
        try:
            interval = parse_duration(raw) if raw else DEFAULT_REDELIVER_INTERVAL
        except ValueError as exc:
            raise spec.error("redeliverInterval", str(exc)) from None
        concurrency = spec.get_int("concurrency", DEFAULT_CONCURRENCY)
        if concurrency < 1:
            raise spec.error("concurrency", "must be at least 1")
        return cls(interval, concurrency)


class MemoryPubSub(PubSub):
    """The in-process broker; see the module docstring for its delivery rules."""

    def __init__(self, settings: MemoryPubSubSettings) -> None:
        self.settings = settings
        self._topics: dict[str, dict[str, _Group]] = {}
        self._subscriptions: set[_MemorySubscription] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._ids = itertools.count(1)
        self._started = False

    @classmethod
    def from_component(cls, spec: ComponentSpec, *, client: None = None) -> MemoryPubSub:
        """No client to inject: the broker is this object."""
        return cls(MemoryPubSubSettings.from_spec(spec))

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._started = False

    async def publish(self, topic: str, data: bytes, metadata: dict[str, str] | None) -> None:
        self._require_started()
        meta = dict(metadata or {})
        message = Message(topic=topic, data=data, metadata=meta, id=str(next(self._ids)))
        groups = [g for g in self._topics.get(topic, {}).values() if g.subscribers > 0]
        if not groups:
            logger.debug("no subscriber for topic %s; message %s dropped", topic, message.id)
        for group in groups:
            group.queue.put_nowait(message)

    async def subscribe(
        self, topic: str, handler: Handler, *, group: str, concurrency: int
    ) -> Subscription:
        self._require_started()
        queue_group = self._topics.setdefault(topic, {}).setdefault(group, _Group())
        size = concurrency if concurrency > 0 else self.settings.concurrency
        subscription = _MemorySubscription(self, queue_group, handler, size)
        subscription.start()
        self._subscriptions.add(subscription)
        return subscription

    def redeliver_later(self, queue: asyncio.Queue[Message], message: Message) -> None:
        """Queue ``message`` again after ``redeliver_interval`` (dropped if the broker closes)."""

        def fire() -> None:
            self._timers.discard(handle)
            queue.put_nowait(message)

        handle = asyncio.get_running_loop().call_later(self.settings.redeliver_interval, fire)
        self._timers.add(handle)

    def forget(self, subscription: _MemorySubscription) -> None:
        self._subscriptions.discard(subscription)

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("MemoryPubSub used before start()")
