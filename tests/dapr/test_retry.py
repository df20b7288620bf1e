"""``retry_on_conflict``: ETag conflicts are retried with a short backoff, counted, and end in
``ConcurrencyExhaustedError``; any other error ends the retries at once. The delays are the real,
millisecond ones."""

from __future__ import annotations

import time

import pytest

from daca.dapr import ETagMismatchError, SidecarUnavailableError, StateTransactionError
from daca.dapr.retry import ConcurrencyExhaustedError, ConflictError, retry_on_conflict

CONFLICTS = [
    ETagMismatchError(409, "ERR_STATE_SAVE", "etag mismatch"),
    StateTransactionError(500, "ERR_STATE_TRANSACTION", "etag mismatch"),
    ConflictError("changed meanwhile"),
]


class Flaky:
    """Fails with ``errors`` in turn, then answers ``"done"``; counts calls and conflicts."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.conflicts = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"

    def count(self) -> None:
        self.conflicts += 1


async def test_every_kind_of_conflict_is_retried_and_counted() -> None:
    attempt = Flaky(*CONFLICTS)
    result = await retry_on_conflict(attempt, attempts=4, what="save", on_conflict=attempt.count)
    assert (result, attempt.calls, attempt.conflicts) == ("done", 4, 3)


async def test_conflicts_past_the_attempts_exhaust_the_retry() -> None:
    attempt = Flaky(*CONFLICTS * 2)
    started = time.monotonic()
    with pytest.raises(ConcurrencyExhaustedError, match="save: still conflicting after 3") as e:
        await retry_on_conflict(attempt, attempts=3, what="save", on_conflict=attempt.count)
    assert (attempt.calls, attempt.conflicts) == (3, 3)
    assert isinstance(e.value.__cause__, ConflictError)  # the last conflict
    assert 0.006 <= time.monotonic() - started < 1.0  # waits of at least 2 and 4 ms


async def test_other_errors_are_not_retried() -> None:
    attempt = Flaky(SidecarUnavailableError("down"))
    with pytest.raises(SidecarUnavailableError):
        await retry_on_conflict(attempt, attempts=5, what="save", on_conflict=attempt.count)
    assert (attempt.calls, attempt.conflicts) == (1, 0)
