"""Messages gathered into batches for bulk delivery, as daprd's default bulk subscriber does
(``pkg/runtime/pubsub/default_bulksub.go``, ``processBulkMessagesBatch``).

Each message the backend hands to a handler joins the pending batch and the handler waits for
its own outcome. The batch is flushed when it holds ``size`` messages, or ``wait`` seconds after
its first message arrived; one batch is flushed at a time, and messages that arrive meanwhile
form the next one. A batch never holds more messages than the backend has handlers in flight
(its ``concurrency``), since each message's handler waits for the flush.

Every handler is released: with its batch's outcome, with an error when the flush failed
unexpectedly, or with an error when the subscription closes (the message stays with the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from daca.runtime.pubsub.base import Message

logger = logging.getLogger(__name__)


class BatchReleasedError(Exception):
    """The message left its batch without an outcome (a failed flush, a stop)."""


@dataclass(eq=False)
class Pending:
    """One message waiting in a batch; ``entry_id`` names it in the bulk request."""

    message: Message
    entry_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    outcome: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def ack(self) -> None:
        if not self.outcome.done():
            self.outcome.set_result(None)

    def fail(self, error: Exception) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(error)


Flush = Callable[[list[Pending]], Awaitable[None]]


class Batcher:
    """Gathers :meth:`submit` calls into batches and gives each to ``flush``, one at a time.

    ``flush`` settles each entry (:meth:`Pending.ack` or :meth:`Pending.fail`); any entry it
    leaves unsettled, or all of them when it raises, fails.
    """

    def __init__(self, flush: Flush, *, size: int, wait: float, name: str) -> None:
        self._flush = flush
        self._size = size
        self._wait = wait
        self._name = name
        self._pending: list[Pending] = []
        self._changed = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, message: Message) -> None:
        """Wait for ``message``'s outcome; raises what its flush failed it with."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"bulk {self._name}")
            self._task.add_done_callback(self._report)
        if self._closing:
            raise BatchReleasedError("the subscription is closing")
        pending = Pending(message)
        self._pending.append(pending)
        self._changed.set()
        await pending.outcome

    def close(self) -> None:
        """Release the handlers of the pending batch, and of every message from now on: their
        messages stay unacknowledged, as daprd's (its last flush runs on a cancelled context).
        A batch being sent is not interrupted."""
        self._closing = True
        self._release(self._pending, "the subscription is closing")
        self._pending.clear()

    async def stop(self) -> None:
        """End the flushing task (a batch still being sent fails: its messages stay unacked)."""
        self.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._first_message()
            await self._batch_filled()
            batch = self._take()
            if batch:
                await self._flush_safely(batch)

    def _live(self) -> int:
        """Messages pending whose handler still waits (a cancelled one has left)."""
        self._pending = [pending for pending in self._pending if not pending.outcome.done()]
        return len(self._pending)

    async def _first_message(self) -> None:
        while not self._live():
            self._changed.clear()
            await self._changed.wait()

    async def _batch_filled(self) -> None:
        """Until the batch is full or ``wait`` has passed since this batch began."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while self._live() < self._size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _take(self) -> list[Pending]:
        self._live()
        batch, self._pending = self._pending[: self._size], self._pending[self._size :]
        return batch

    async def _flush_safely(self, batch: list[Pending]) -> None:
        try:
            await self._flush(batch)
        except Exception:
            logger.exception("bulk delivery on %s failed; its messages stay unacked", self._name)
        finally:
            self._release(batch, "its batch was not settled")

    @staticmethod
    def _release(entries: list[Pending], reason: str) -> None:
        for pending in entries:
            pending.fail(BatchReleasedError(reason))

    def _report(self, task: asyncio.Task[None]) -> None:
        """A flushing task that died (``_run`` catches what a flush raises, so never expected)
        releases its handlers; the next message starts another."""
        if task.cancelled() or task.exception() is None:
            return
        logger.error("bulk delivery on %s stopped: %r", self._name, task.exception())
        self._task = None
        self._release(self._pending, "bulk delivery stopped")
        self._pending.clear()
