"""Records turns and registrations (``TurnLog``), retrying in the background when it cannot.

``record`` tries once, inline: once it returns ``True`` the turn is stored with its event in
the sidecar's transactional outbox and survives this process. If the sidecar refuses or cannot
be reached, the write goes to a bounded in-memory queue, and a background task retries it with
exponential backoff until it commits; the reply is still returned. While the queue holds
writes, new ones queue behind them, so turns are recorded in the order they were produced.
Every failure is logged with the item id (the ``turn_id``); the memory side's idempotency per
turn id makes a repeated write harmless.

Only a write that waits in this queue can be lost, when the process dies before the sidecar
comes back. On shutdown the current backoff is cut short and the queue is flushed for a bounded
time; what remains is logged at ERROR with the ids. When the queue is full, ``accepting`` turns
false (the chat refuses new turns with 503); a write that still arrives then evicts the oldest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from daca.dapr.errors import DaprClientError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingWrite:
    """A write waiting to be retried: its id (for the logs) and the attempt to repeat."""

    item_id: str
    attempt: Callable[[], Awaitable[None]]


@dataclass
class RecorderStats:
    """Counters: writes waiting, recorded, retry attempts, failed attempts, evicted."""

    pending: int = 0
    recorded: int = 0
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


class TurnRecorder:
    """Runs writes once inline, and retries the failed ones in order in the background."""

    def __init__(self, *, max_pending: int, backoff: Backoff) -> None:
        self._max_pending = max_pending
        self._backoff = backoff
        self._queue: deque[PendingWrite] = deque()
        self._has_work = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._hurry = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stats = RecorderStats()

    @property
    def stats(self) -> RecorderStats:
        """A snapshot of the counters."""
        return RecorderStats(**{**self._stats.as_dict(), "pending": len(self._queue)})

    @property
    def accepting(self) -> bool:
        """Whether the queue has room for another write."""
        return len(self._queue) < self._max_pending

    def start(self) -> None:
        """Start the background retry task."""
        self._task = asyncio.create_task(self._retry_forever(), name="chat-recorder")
        self._task.add_done_callback(_report_crash)

    async def record(self, item_id: str, attempt: Callable[[], Awaitable[None]]) -> bool:
        """Run ``attempt``; ``False`` when it failed and was queued for retry instead.

        Only Dapr client errors (the sidecar or the store unavailable) are retried; any other
        error propagates at once.
        """
        item = PendingWrite(item_id, attempt)
        if not self._queue and await self._attempt(item):
            return True
        self._enqueue(item)
        return False

    async def _attempt(self, item: PendingWrite) -> bool:
        """One attempt; failures are counted and logged with the item id."""
        try:
            await item.attempt()
        except DaprClientError as exc:
            self._stats.failed += 1
            logger.warning("Recording %s failed: %s", item.item_id, exc)
            return False
        self._stats.recorded += 1
        return True

    def _enqueue(self, item: PendingWrite) -> None:
        """Queue ``item`` for retry, evicting the oldest write when the queue is full."""
        if not self.accepting:
            evicted = self._queue.popleft()
            self._stats.dropped += 1
            logger.error("Queue full: %s dropped unrecorded", evicted.item_id)
        self._queue.append(item)
        self._has_work.set()
        self._empty.clear()
        logger.info("%s queued for retry (%d pending)", item.item_id, len(self._queue))

    async def _retry_forever(self) -> None:
        """Retry the oldest queued write until it is recorded, then the next.

        A loop of its own, not the project's retry library (stamina): shutdown must cut a pause
        short, and the write to retry may change during one (an overflow evicts the oldest).
        """
        delay = self._backoff.initial
        while True:
            await self._wait_for_work()
            self._stats.retried += 1
            head = self._queue[0]
            if await self._attempt(head):
                self._dequeue(head)
                delay = self._backoff.initial
                continue
            interrupted = await self._pause(delay)
            delay = self._backoff.initial if interrupted else self._backoff.next(delay)

    def _dequeue(self, item: PendingWrite) -> None:
        """Remove ``item``, just recorded (unless an overflow evicted it meanwhile)."""
        logger.info("%s recorded on retry", item.item_id)
        with contextlib.suppress(ValueError):
            self._queue.remove(item)
        if not self._queue:
            self._empty.set()

    async def _wait_for_work(self) -> None:
        """Return once the queue holds a write."""
        while not self._queue:
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
        """Flush the queue for at most ``flush_timeout`` s, stop, and report what is left."""
        self._hurry.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(flush_timeout):
                await self._empty.wait()
        await self._stop_task()
        if self._queue:
            ids = ", ".join(item.item_id for item in self._queue)
            logger.error("%d write(s) left unrecorded at shutdown: %s", len(self._queue), ids)

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
        logger.error("The recorder's retry task died", exc_info=task.exception())
