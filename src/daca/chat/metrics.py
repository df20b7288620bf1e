"""The chat service's Prometheus metrics (``GET /metrics``).

- ``daca_chat_turn_duration_seconds{phase}``: a turn's time in ``memory_read`` (the memory
  service's snapshot and the chat's own session record, read at once), ``agent`` (the agent
  run, LLM calls and tools included), ``publish`` (the outbox transaction that records the
  turn and publishes its event), and ``total``; only answered turns are observed.
- ``daca_chat_turns_total{outcome}``: answered, or failed (the model failed or timed out).
- ``daca_chat_recorder_turns_total{outcome}`` and ``daca_chat_recorder_pending``: the turn
  recorder's counters (recorded, retried, failed, dropped) and its queue.
- ``daca_llm_*{purpose="chat"}``: every LLM call (``daca.telemetry.metrics.LLMMetrics``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from daca.telemetry.metrics import SECONDS_BUCKETS, LLMMetrics

PHASES = ("memory_read", "agent", "publish", "total")


class _RecorderCollector(Collector):
    """The recorder's counters, read at each scrape."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._read()
        turns = CounterMetricFamily(
            "daca_chat_recorder_turns",
            "Turns and registrations the recorder recorded, retried, failed or dropped.",
            labels=["outcome"],
        )
        for outcome in ("recorded", "retried", "failed", "dropped"):
            turns.add_metric([outcome], stats[outcome])
        yield turns
        yield GaugeMetricFamily(
            "daca_chat_recorder_pending", "Turns waiting to be recorded.", value=stats["pending"]
        )


class ChatMetrics:
    """The chat app's registry and what it measures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.llm = LLMMetrics.on(self.registry)
        self.turn_seconds = Histogram(
            "daca_chat_turn_duration_seconds", "A turn's time, by phase.", ["phase"],
            buckets=SECONDS_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.turns = Counter(
            "daca_chat_turns", "Turns answered or failed.", ["outcome"], registry=self.registry
        )

    def watch_recorder(self, read: Callable[[], dict[str, int]]) -> None:
        """Export the recorder's counters (``RecorderStats.as_dict``)."""
        self.registry.register(_RecorderCollector(read))

    def phase(self, name: str, seconds: float) -> None:
        self.turn_seconds.labels(name).observe(seconds)
