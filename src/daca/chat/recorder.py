"""Publishes events through the sidecar, with an outbox so a failed publish is never lost.

``publish`` tries once; if the sidecar refuses or cannot be reached, the event goes to a
bounded in-memory outbox, and a background task retries it with exponential backoff until it
is accepted. While the outbox holds events, new ones queue behind them, so events leave in the
order they were produced. Every failure is logged with the event id (the ``turn_id``), which
also makes a republish idempotent on the memory side.

On shutdown the current backoff is cut short and the outbox is flushed (backing off again
from the initial delay) for a bounded time; what remains is logged at ERROR with the event
ids. When the outbox is full, ``accepting`` turns false (the chat refuses new turns with 503);
an event that still arrives then evicts the oldest one, logged at ERROR.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel

from daca.dapr.client import DaprClient
from daca.dapr.errors import DaprClientError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxEvent:
    """An event waiting to be published."""

    event_id: str
    topic: str
    data: dict[str, Any]


@dataclass
class PublisherStats:
    """Counters: events waiting, published, retry attempts, failed attempts, evicted."""

    pending: int = 0
    published: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain mapping (for ``/healthz``)."""
        return asdict(self)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff bounds, in seconds."""

    initial: float = 0.5
    maximum: float = 30.0

    def next(self, delay: float) -> float:
        """The delay after ``delay``."""
        return min(delay * 2, self.maximum)


class EventPublisher:
    """Publishes to one pubsub component, retrying failed events from an outbox."""

    def __init__(
        self, dapr: DaprClient, pubsub: str, *, max_pending: int, backoff: Backoff
    ) -> None:
        self._dapr = dapr
        self._pubsub = pubsub
        self._max_pending = max_pending
        self._backoff = backoff
        self._outbox: deque[OutboxEvent] = deque()
        self._has_work = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._hurry = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stats = PublisherStats()

    @property
    def stats(self) -> PublisherStats:
        """A snapshot of the counters."""
        return PublisherStats(**{**self._stats.as_dict(), "pending": len(self._outbox)})

    @property
    def accepting(self) -> bool:
        """Whether the outbox has room for another event."""
        return len(self._outbox) < self._max_pending

    def start(self) -> None:
        """Start the background retry task."""
        self._task = asyncio.create_task(self._retry_forever(), name="chat-outbox")
        self._task.add_done_callback(_report_crash)

    async def publish(self, topic: str, event: BaseModel, *, event_id: str) -> bool:
        """Publish ``event``; ``False`` when it was queued for retry instead."""
        item = OutboxEvent(event_id, topic, event.model_dump(mode="json"))
        if not self._outbox and await self._attempt(item):
            return True
        self._enqueue(item)
        return False

    async def _attempt(self, item: OutboxEvent) -> bool:
        """One publish attempt; failures are counted and logged with the event id."""
        try:
            await self._dapr.publish(self._pubsub, item.topic, item.data)
        except DaprClientError as exc:
            self._stats.failed += 1
            logger.warning("Publish of event %s to %s failed: %s", item.event_id, item.topic, exc)
            return False
        self._stats.published += 1
        return True

    def _enqueue(self, item: OutboxEvent) -> None:
        """Queue ``item`` for retry, evicting the oldest event when the outbox is full."""
        if not self.accepting:
            evicted = self._outbox.popleft()
            self._stats.dropped += 1
            logger.error("Outbox full: event %s dropped unpublished", evicted.event_id)
        self._outbox.append(item)
        self._has_work.set()
        self._empty.clear()
        logger.info("Event %s queued for retry (%d pending)", item.event_id, len(self._outbox))

    async def _retry_forever(self) -> None:
        """Retry the oldest queued event until it is published, then the next."""
        delay = self._backoff.initial
        while True:
            await self._wait_for_work()
            self._stats.retried += 1
            head = self._outbox[0]
            if await self._attempt(head):
                self._dequeue(head)
                delay = self._backoff.initial
                continue
            interrupted = await self._pause(delay)
            delay = self._backoff.initial if interrupted else self._backoff.next(delay)

    def _dequeue(self, item: OutboxEvent) -> None:
        """Remove ``item``, just published (unless an overflow evicted it meanwhile)."""
        logger.info("Event %s published on retry", item.event_id)
        with contextlib.suppress(ValueError):
            self._outbox.remove(item)
        if not self._outbox:
            self._empty.set()

    async def _wait_for_work(self) -> None:
        """Return once the outbox holds an event."""
        while not self._outbox:
            self._has_work.clear()
            await self._has_work.wait()

    async def _pause(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; ``True`` when shutdown cut the sleep short."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._hurry.wait()
        interrupted = self._hurry.is_set()
        self._hurry.clear()
        return interrupted

    async def close(self, flush_timeout: float) -> None:
        """Flush the outbox for at most ``flush_timeout`` s, stop, and report what is left."""
        self._hurry.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(flush_timeout):
                await self._empty.wait()
        await self._stop_task()
        if self._outbox:
            ids = ", ".join(item.event_id for item in self._outbox)
            logger.error("%d event(s) left unpublished at shutdown: %s", len(self._outbox), ids)

    async def _stop_task(self) -> None:
        """Cancel the retry task and wait for it."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _report_crash(task: asyncio.Task[None]) -> None:
    """Log the retry task's death loudly, should it ever die of an unexpected error."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("The outbox retry task died", exc_info=task.exception())
