"""Prometheus metrics shared by both services: one registry per app, LLM calls by purpose.

Each app owns its ``CollectorRegistry`` (never prometheus-client's global one), so a process
that builds several apps, as the tests do, keeps their figures apart, and ``GET /metrics``
renders exactly that app's. Names follow Prometheus' conventions: ``daca_`` prefix, base units
(seconds), ``_total`` on counters (added by the client).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

#: Latency buckets from a local hop (milliseconds) to a slow LLM call (a minute).
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class LLMMetrics:
    """Every LLM call an app makes, by ``purpose`` (``chat``, ``summary``, ``embedding``)."""

    calls: Counter
    seconds: Histogram
    tokens: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> LLMMetrics:
        return cls(
            calls=Counter(
                "daca_llm_calls", "LLM calls, by purpose and outcome (ok, error, cancelled).",
                ["purpose", "outcome"], registry=registry,
            ),
            seconds=Histogram(
                "daca_llm_call_duration_seconds", "How long an LLM call took, by purpose.",
                ["purpose"], buckets=SECONDS_BUCKETS, registry=registry,
            ),
            tokens=Counter(
                "daca_llm_tokens", "Tokens the LLM reported, by purpose and kind (input, output).",
                ["purpose", "kind"], registry=registry,
            ),
        )  # fmt: skip

    def observe(
        self, purpose: str, outcome: str, seconds: float, *, input_tokens: int, output_tokens: int
    ) -> None:
        """Count one call."""
        self.calls.labels(purpose, outcome).inc()
        self.seconds.labels(purpose).observe(seconds)
        if input_tokens:
            self.tokens.labels(purpose, "input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(purpose, "output").inc(output_tokens)


#: The OpenAPI answer of a ``GET /metrics`` route.
METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus' text exposition format.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def metrics_response(registry: CollectorRegistry) -> Response:
    """``GET /metrics``: the registry in Prometheus' text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
