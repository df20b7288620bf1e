"""The summary coalescer: one summary call per user per burst of turns, off the request path.

After a turn is stored the user is marked dirty. Per user, a task waits until a summary is
due, then makes ONE call to the ``SummaryWriter`` with the previous summary, the known facts and
all pending turns (any session), and writes the new summary and facts back
(``daca.memory.summaries``). A summary is due when the user has paused
(``summary_debounce_seconds`` since the last turn) or the oldest pending turn has waited
``summary_max_delay_seconds``, whichever is first; but a user's summaries are at least
``summary_min_interval_seconds`` apart. Once ``summary_max_pending_turns`` turns wait, the
summary is due at once (only a retry's backoff holds it). So a user who keeps talking costs one
call per interval (or per that many turns), not one per pause, and the summary is never more
than the larger of the max delay and the interval, nor more than about that many turns, behind
(plus the call itself). The bound on turns also bounds the pending record, which every append
rewrites and every context read parses (a user talking fast once kept hundreds of turns there).
What the summary has not absorbed yet, the chat still sees: its context holds the session's
recent turns and the search over the log and the pending turns.

One task per user means at most one summary in flight per user. A failing or slow writer leaves
the turns pending; the task retries with capped exponential backoff. History is stored before a
turn is pending, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from daca.contracts.models import ConversationTurn
from daca.llm.memory_update import MemoryUpdate
from daca.memory.metrics import MemoryMetrics
from daca.memory.settings import MemorySettings
from daca.memory.summaries import SummaryStore
from daca.telemetry import tracing

#: The most turns a summary's span links to (a burst's first ones).
MAX_LINKS = 64

logger = logging.getLogger(__name__)


class SummaryWriter(Protocol):
    """Writes a user's new summary and new facts from the previous summary, the known facts
    (``(fact_id, text)``) and the new turns."""

    async def write(
        self,
        previous_summary: str | None,
        turns: Sequence[ConversationTurn],
        known_facts: Sequence[tuple[str, str]] = (),
    ) -> MemoryUpdate:
        """The new summary and facts."""


@dataclass
class _Schedule:
    """When a user's next summary is due."""

    first_at: float | None
    last_at: float
    #: Turns stored since the last round began.
    pending: int = 1
    #: When the last round began (none yet: the first is not held back by the interval).
    last_round_at: float = float("-inf")
    not_before: float = 0.0
    failures: int = 0
    #: Set by each new turn: enough pending turns can make the summary due earlier.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: The spans that handled the turns waiting for this summary (its span links to them).
    turn_spans: list[SpanContext] = field(default_factory=list)

    def add_turn_span(self) -> None:
        """Remember the current span (an event's handling), at most ``MAX_LINKS``."""
        context = trace.get_current_span().get_span_context()
        if context.is_valid and len(self.turn_spans) < MAX_LINKS:
            self.turn_spans.append(context)


class Summarizer:
    """Coalesces turns per user into debounced, bounded-delay summary calls."""

    def __init__(
        self,
        store: SummaryStore,
        writer: SummaryWriter,
        settings: MemorySettings,
        metrics: MemoryMetrics,
    ) -> None:
        self._store = store
        self._writer = writer
        self._settings = settings
        self._counters = metrics.counters
        self._lag = metrics.summary_lag
        self._schedules: dict[str, _Schedule] = {}
        #: When each user's last round began, kept past its schedule for the interval's sake
        #: (entries older than the interval are dropped as new users arrive).
        self._last_rounds: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending_users(self) -> int:
        """How many users have a summary scheduled or in flight."""
        return len(self._schedules)

    def mark_dirty(self, user_id: str, turns: int = 1) -> None:
        """Record ``turns`` new pending turns of ``user_id`` and make sure a summary will
        follow."""
        now = _now()
        schedule = self._schedules.get(user_id)
        if schedule is None and self._closed:
            return
        if schedule is None:
            schedule = self._schedules[user_id] = _Schedule(
                first_at=now, last_at=now, pending=turns,
                last_round_at=self._last_round(user_id, now),
            )  # fmt: skip
            schedule.add_turn_span()
            self._spawn(user_id)
            return
        schedule.first_at = now if schedule.first_at is None else schedule.first_at
        schedule.last_at = now
        schedule.pending += turns
        schedule.add_turn_span()
        if schedule.pending >= self._settings.summary_max_pending_turns:
            schedule.changed.set()

    def ensure_scheduled(self, user_id: str) -> None:
        """Schedule a summary unless one is already scheduled (e.g. pending after a restart)."""
        if user_id not in self._schedules:
            self.mark_dirty(user_id)

    async def aclose(self) -> None:
        """Cancel the scheduled summaries (pending turns stay stored for the next start)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, user_id: str) -> None:
        """Start the task that summarises ``user_id`` (outside the current trace: its spans
        start their own traces, linked to the turns they cover)."""
        task = asyncio.create_task(
            self._run(user_id), name=f"summary:{user_id}", context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, user_id: str) -> None:
        """Summarise ``user_id`` until no turn is left pending."""
        schedule = self._schedules[user_id]
        try:
            while schedule.first_at is not None and not self._closed:
                await self._wait_until_due(schedule)
                schedule.first_at, schedule.pending = None, 0
                schedule.last_round_at = _now()
                await self._round(user_id, schedule)
        finally:
            del self._schedules[user_id]
            self._last_rounds[user_id] = schedule.last_round_at

    def _last_round(self, user_id: str, now: float) -> float:
        """When ``user_id``'s last round began, if within the interval; forgets older ones."""
        horizon = now - self._settings.summary_min_interval_seconds
        if len(self._last_rounds) > 2 * len(self._schedules) + 100:
            self._last_rounds = {u: t for u, t in self._last_rounds.items() if t > horizon}
        started = self._last_rounds.pop(user_id, float("-inf"))
        return started if started > horizon else float("-inf")

    async def _round(self, user_id: str, schedule: _Schedule) -> None:
        """One summary attempt, one span linked to the turns it covers; reschedule after a
        failure or when turns remain."""
        links = [trace.Link(context) for context in schedule.turn_spans]
        schedule.turn_spans = []
        span = tracing.tracer(__name__).start_as_current_span("summary", links=links)
        with span as current:
            remaining = await self._summarize(user_id)
            current.set_attribute("daca.outcome", "failed" if remaining is None else "ok")
        if remaining is None:
            schedule.failures += 1
            schedule.not_before = _now() + self._backoff(schedule.failures)
            schedule.last_round_at = float("-inf")  # a retry waits for its backoff only
        else:
            schedule.failures = 0
        if remaining is not False and schedule.first_at is None:
            # Turns no new turn re-armed: the failed batch, or what the batch limit left. They
            # go as soon as the backoff allows, not an interval later.
            schedule.first_at = schedule.last_at = _now()
            schedule.pending = self._settings.summary_max_pending_turns

    async def _summarize(self, user_id: str) -> bool | None:
        """Write one summary: whether turns remain pending, or ``None`` on failure."""
        try:
            batch = await self._store.load(user_id)
            if not batch.turns:
                return False
            self._counters.summary_calls += 1
            async with asyncio.timeout(self._settings.summary_timeout_seconds):
                update = await self._writer.write(
                    batch.previous_summary, batch.turns, batch.known_facts
                )
            remaining = await self._store.commit(user_id, update, batch.turns)
            self._lag.observe(_seconds_behind(batch.turns))
            return remaining
        except Exception as exc:  # any writer or store failure keeps the turns pending
            self._counters.summary_failures += 1
            logger.warning(
                "summary of user %s failed: %s", user_id, type(exc).__name__, exc_info=True
            )
            return None

    async def _wait_until_due(self, schedule: _Schedule) -> None:
        """Sleep until the quiet period is over, the max delay is reached, and no backoff holds."""
        delay = self._due(schedule) - _now()
        while delay > 0:
            schedule.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await schedule.changed.wait()
            delay = self._due(schedule) - _now()

    def _due(self, schedule: _Schedule) -> float:
        """The loop time at which the next summary of ``schedule`` may run."""
        settings = self._settings
        if schedule.pending >= settings.summary_max_pending_turns:
            return schedule.not_before
        first = schedule.first_at if schedule.first_at is not None else schedule.last_at
        quiet = schedule.last_at + settings.summary_debounce_seconds
        due = min(quiet, first + settings.summary_max_delay_seconds)
        due = max(due, schedule.last_round_at + settings.summary_min_interval_seconds)
        return max(schedule.not_before, due)

    def _backoff(self, failures: int) -> float:
        """The delay before retry number ``failures``."""
        base = self._settings.summary_retry_base_seconds
        return float(min(self._settings.summary_retry_max_seconds, base * 2 ** (failures - 1)))


def _seconds_behind(turns: Sequence[ConversationTurn]) -> float:
    """How long ago the oldest of ``turns`` was said (0 for a timestamp in the future)."""
    oldest = min(datetime.fromisoformat(turn.timestamp) for turn in turns)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - oldest).total_seconds())


def _now() -> float:
    """The running loop's clock."""
    return asyncio.get_running_loop().time()
