"""In-process counters, exposed as JSON on ``GET /metrics`` and ``GET /healthz``."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)
