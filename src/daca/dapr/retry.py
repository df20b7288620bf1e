"""Optimistic-concurrency retry: re-run a read-modify-write until its ETags hold."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

from daca.dapr.errors import DaprClientError, ETagMismatchError, StateTransactionError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ConflictError(Exception):
    """Raised by an attempt that saw a concurrent change before writing anything."""


class ConcurrencyExhaustedError(DaprClientError):
    """An optimistic-concurrency update kept conflicting; the caller may retry later."""


#: What counts as a conflict. ``StateTransactionError`` does because daprd reports a
#: transaction's ETag mismatch as a 500 ``ERR_STATE_TRANSACTION``.
_CONFLICTS = (ETagMismatchError, StateTransactionError, ConflictError)
_FIRST_WAIT, _MAX_WAIT, _MAX_JITTER = 0.002, 0.05, 0.004
_JITTER = random.Random()


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    what: str,
    on_conflict: Callable[[], None] | None = None,
) -> T:
    """Run ``attempt`` up to ``attempts`` times while it conflicts (``on_conflict`` is told of
    every conflict); other errors propagate at once.

    Between attempts: 2 ms doubling to at most 50 ms, plus up to 4 ms of jitter so that writers
    that collided do not collide again. No overall timeout: conflicts clear in milliseconds.
    The jitter has its own generator (stamina's would draw from the process-wide ``random``,
    whose state belongs to the application, and to hypothesis under the contract tests).
    """
    conflicts = 0

    def backoff(exc: Exception) -> bool | float:
        nonlocal conflicts
        if not isinstance(exc, _CONFLICTS):
            return False
        conflicts += 1
        wait: float = min(_MAX_WAIT, _FIRST_WAIT * 2.0 ** (conflicts - 1))
        return wait + _JITTER.uniform(0, _MAX_JITTER)

    async def once() -> T:
        try:
            return await attempt()
        except _CONFLICTS as exc:
            logger.debug("%s: conflict (%s)", what, type(exc).__name__)
            if on_conflict is not None:
                on_conflict()
            raise

    retrying = stamina.AsyncRetryingCaller(attempts=attempts, timeout=None)
    try:
        return await retrying(backoff, once)
    except _CONFLICTS as exc:
        message = f"{what}: still conflicting after {attempts} attempts"
        raise ConcurrencyExhaustedError(message) from exc
