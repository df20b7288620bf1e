"""The memory service's counters (JSON on ``GET /healthz``) and its Prometheus metrics
(``GET /metrics``).

Prometheus names:

- ``daca_memory_events_total{outcome}``: events ``handled``, ``duplicate`` (skipped),
  ``dropped`` (malformed: dead-lettered by the sidecar), ``retried`` (answered RETRY);
- ``daca_memory_dead_letters_stored_total``;
- ``daca_memory_append_conflicts_total``: appends that lost an ETag race to another writer (a
  replica) and were tried again;
- ``daca_memory_summary_attempts_total`` and ``daca_memory_summary_failures_total``;
- ``daca_memory_summary_lag_seconds``: from the oldest turn a summary covers (the turn's own
  time) to the summary's commit: how far behind the user's long-term memory runs;
- ``daca_memory_pending_users``: users with turns waiting for a summary;
- ``daca_llm_*{purpose}``: LLM calls, ``summary`` (which extracts the facts in the same call)
  and ``embedding`` (``daca.telemetry.metrics.LLMMetrics``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from daca.telemetry.metrics import LLMMetrics

#: Summary lag: a debounce of a second or two up to a long outage of the LLM.
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)


@dataclass
class Counters:
    """Monotonic counters of the memory service (since the process started)."""

    events_handled: int = 0
    duplicates_skipped: int = 0
    events_dropped: int = 0
    events_retried: int = 0
    dead_letters_stored: int = 0
    summary_calls: int = 0
    summary_failures: int = 0
    #: Appends that lost an ETag race to another writer (a replica) and were tried again.
    append_conflicts: int = 0

    def conflict(self) -> None:
        self.append_conflicts += 1

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


class _CountersCollector(Collector):
    """``Counters`` in Prometheus' names, read at each scrape."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        c = self._counters
        events = CounterMetricFamily(
            "daca_memory_events", "Events delivered to the service, by outcome.", labels=["outcome"]
        )
        for outcome, value in (
            ("handled", c.events_handled), ("duplicate", c.duplicates_skipped),
            ("dropped", c.events_dropped), ("retried", c.events_retried),
        ):  # fmt: skip
            events.add_metric([outcome], value)
        yield events
        yield CounterMetricFamily(
            "daca_memory_dead_letters_stored", "Dead letters stored.", value=c.dead_letters_stored
        )
        yield CounterMetricFamily(
            "daca_memory_append_conflicts",
            "Appends that lost an ETag race and were tried again.",
            value=c.append_conflicts,
        )
        yield CounterMetricFamily(
            "daca_memory_summary_attempts", "Summary rounds started.", value=c.summary_calls
        )
        yield CounterMetricFamily(
            "daca_memory_summary_failures", "Summary rounds failed.", value=c.summary_failures
        )


class MemoryMetrics:
    """The memory app's registry: its counters, LLM calls and the summary lag."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.counters = Counters()
        self.registry.register(_CountersCollector(self.counters))
        self.llm = LLMMetrics.on(self.registry)
        self.summary_lag = Histogram(
            "daca_memory_summary_lag_seconds",
            "From the oldest turn a summary covers to the summary's commit.",
            buckets=LAG_BUCKETS, registry=self.registry,
        )  # fmt: skip

    def watch_pending_users(self, read: Callable[[], int]) -> None:
        """Export the number of users with a summary pending, read at each scrape."""
        gauge = Gauge(
            "daca_memory_pending_users", "Users with turns waiting for a summary.",
            registry=self.registry,
        )  # fmt: skip
        gauge.set_function(read)
