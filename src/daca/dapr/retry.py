"""Optimistic-concurrency retry: re-run a read-modify-write until its ETags hold."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from daca.dapr.errors import DaprClientError, ETagMismatchError, StateTransactionError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The jitter's own generator: the process-wide ``random`` state belongs to the application.
_JITTER = random.Random()
_BASE_DELAY = 0.002
_MAX_DELAY = 0.05


class ConflictError(Exception):
    """Raised by an attempt that saw a concurrent change before writing anything."""


class ConcurrencyExhaustedError(DaprClientError):
    """An optimistic-concurrency update kept conflicting; the caller may retry later."""


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    what: str,
    on_conflict: Callable[[], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, retrying ETag conflicts with jittered backoff
    (``on_conflict`` is told of each).

    ``StateTransactionError`` counts as a conflict: daprd reports a transaction's ETag mismatch
    as a 500 ``ERR_STATE_TRANSACTION``. Other errors propagate at once.
    """
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except (ETagMismatchError, StateTransactionError, ConflictError) as exc:
            logger.debug("%s: conflict on attempt %d (%s)", what, number, type(exc).__name__)
            if on_conflict is not None:
                on_conflict()
            await asyncio.sleep(_backoff(number))
    raise ConcurrencyExhaustedError(f"{what}: still conflicting after {attempts} attempts")


def _backoff(number: int) -> float:
    """A jittered, capped exponential delay before attempt ``number + 1``."""
    return _JITTER.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2**number))
