"""The worker pool both pub/sub backends deliver with, and its defaults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Handlers a subscription runs at once when neither it nor its component says.
DEFAULT_CONCURRENCY = 10
#: How long ``close`` waits for handlers in flight before cancelling them (seconds).
DEFAULT_DRAIN_TIMEOUT = 5.0


class Workers(Generic[T]):
    """``size`` tasks that take items from ``queue`` and pass each one to ``work``.

    ``stop`` cancels the idle workers at once and gives the busy ones ``grace`` seconds to
    finish their item before cancelling them too. No task outlives ``stop``.
    """

    def __init__(
        self, queue: asyncio.Queue[T], work: Callable[[T], Awaitable[None]], size: int
    ) -> None:
        self._queue = queue
        self._work = work
        self._size = size
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = False

    def start(self) -> None:
        self._tasks = {asyncio.create_task(self._run()) for _ in range(self._size)}

    @property
    def busy(self) -> int:
        """How many items are being worked on now."""
        return len(self._busy)

    async def stop(self, grace: float) -> None:
        self._stopping = True
        for task in self._tasks - self._busy:
            task.cancel()
        if self._busy:
            await asyncio.wait(set(self._busy), timeout=grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while not self._stopping:
            item = await self._queue.get()
            self._busy.add(task)
            try:
                await self._work(item)
            except Exception:
                logger.exception("pub/sub worker failed")
            finally:
                self._busy.discard(task)
