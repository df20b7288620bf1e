"""The pub/sub contract every backend implements.

A backend moves opaque bytes (the CloudEvent JSON the runtime built) between publishers and
subscribers. Delivery is at-least-once:

- the subscriber's handler returning normally acknowledges the message;
- the handler raising any exception leaves the message unacknowledged, and the backend delivers it
  again later (Redis: the pending entry is reclaimed after ``processingTimeout``, checked every
  ``redeliverInterval``; in-memory: redelivered after ``redeliverInterval``).

The runtime's delivery layer decides retries, DROP and dead letters; it raises only when a
message must stay with the broker (no dead-letter topic to hand it to).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from daca.runtime.pubsub.workers import DEFAULT_DRAIN_TIMEOUT


@dataclass(frozen=True, slots=True)
class Message:
    """One message as stored by the broker."""

    topic: str
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)
    id: str = ""  # broker id (Redis stream entry id); informational


Handler = Callable[[Message], Awaitable[None]]


class Subscription(abc.ABC):
    """A running consumer; ``close`` stops it, waiting for handlers in flight."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class PubSub(abc.ABC):
    """A topic-based broker.

    Lifecycle: ``await start()`` (connects; :class:`~daca.runtime.errors.ComponentError` if the
    backend is unreachable), ``await close()`` (closes every subscription it made).
    """

    #: Seconds a closing subscription waits for its handlers in flight before cancelling them.
    #: No component field sets it (daprd has none); tests shorten it on an instance.
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, topic: str, data: bytes, metadata: dict[str, str] | None) -> None:
        """Store one message; raises :class:`~daca.runtime.errors.StoreError` on failure.

        ``metadata`` None is a message without metadata (daprd's bulk publish of an entry that
        has none): Redis then stores no ``metadata`` field, as daprd's component does.
        """

    @abc.abstractmethod
    async def subscribe(
        self, topic: str, handler: Handler, *, group: str, concurrency: int
    ) -> Subscription:
        """Deliver ``topic`` to ``handler`` with at most ``concurrency`` handlers in flight.

        ``group`` is the consumer group (the app-id): subscribers in one group share the messages,
        each group gets every message.
        """
