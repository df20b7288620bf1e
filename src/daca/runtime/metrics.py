"""The sidecar's Prometheus metrics, under daprd's names (``pkg/diagnostics``), for what it
implements: its HTTP API, and pub/sub ingress (deliveries to the app) and egress (publishes).

daprd's OpenCensus exporter writes a counter without the ``_total`` suffix prometheus-client's
exposition insists on, and latencies in milliseconds, so these families are written by hand, in
daprd's text: ``dapr_http_server_request_count{app_id,method,path,status}``,
``dapr_http_server_latency`` (path ``""``, as daprd without path matching),
``dapr_component_pubsub_ingress_count{app_id,component,namespace,process_status,status,topic}``
and ``_latencies``, ``dapr_component_pubsub_egress_count{app_id,component,namespace,success,
topic}`` and ``_latencies``. ``GET /metrics`` (and ``/``) on the metrics port serves them.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: daprd's default latency buckets, in milliseconds (``defaultLatencyDistribution``, pkg/config).
LATENCY_MS = (
    1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250, 300,
    400, 500, 650, 800, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
)  # fmt: skip

Labels = tuple[str, ...]


def _labels(names: Labels, values: Labels, extra: str = "") -> str:
    pairs = [f'{name}="{_escaped(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class _Series:
    """One counter and the latency histogram beside it, by label values."""

    names: Labels
    counts: dict[Labels, int] = field(default_factory=lambda: defaultdict(int))
    buckets: dict[Labels, list[int]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))

    def record(self, labels: Labels, milliseconds: float) -> None:
        self.counts[labels] += 1
        slots = self.buckets.setdefault(labels, [0] * (len(LATENCY_MS) + 1))
        slots[bisect.bisect_left(LATENCY_MS, milliseconds)] += 1
        self.sums[labels] += milliseconds

    def counter(self, name: str, doc: str) -> list[str]:
        lines = [f"# HELP {name} {doc}", f"# TYPE {name} counter"]
        for labels, value in sorted(self.counts.items()):
            lines.append(f"{name}{_labels(self.names, labels)} {value}")
        return lines

    def histogram(self, name: str, doc: str) -> list[str]:
        lines = [f"# HELP {name} {doc}", f"# TYPE {name} histogram"]
        for labels, slots in sorted(self.buckets.items()):
            total = 0
            for bound, count in zip([*map(str, LATENCY_MS), "+Inf"], slots, strict=True):
                total += count
                le = f'le="{bound}"'
                lines.append(f"{name}_bucket{_labels(self.names, labels, le)} {total}")
            lines.append(f"{name}_sum{_labels(self.names, labels)} {self.sums[labels]}")
            lines.append(f"{name}_count{_labels(self.names, labels)} {total}")
        return lines


class RuntimeMetrics:
    """What one sidecar counts."""

    def __init__(self, app_id: str, namespace: str = "") -> None:
        self.app_id, self.namespace = app_id, namespace
        self._http = _Series(("app_id", "method", "path", "status"))
        self._ingress = _Series(
            ("app_id", "component", "namespace", "process_status", "status", "topic")
        )
        self._egress = _Series(("app_id", "component", "namespace", "success", "topic"))

    def http_request(self, method: str, status: int, milliseconds: float) -> None:
        self._http.record((self.app_id, method, "", str(status)), milliseconds)

    def ingress(self, component: str, topic: str, outcome: str, milliseconds: float) -> None:
        """A delivery to the app: ``outcome`` success, retry or drop (daprd's process status)."""
        labels = (self.app_id, component, self.namespace, outcome, outcome, topic)
        self._ingress.record(labels, milliseconds)

    def egress(self, component: str, topic: str, success: bool, milliseconds: float) -> None:
        """A publish to the broker."""
        labels = (self.app_id, component, self.namespace, str(success).lower(), topic)
        self._egress.record(labels, milliseconds)

    def render(self) -> bytes:
        """Prometheus' text format, as daprd's exporter writes these families."""
        lines = [
            *self._http.counter(
                "dapr_http_server_request_count",
                "Count of HTTP requests processed by the server.",
            ),
            *self._http.histogram(
                "dapr_http_server_latency", "HTTP request end-to-end latency in server."
            ),
            *self._ingress.counter(
                "dapr_component_pubsub_ingress_count",
                "The number of incoming messages arriving from the pub/sub component.",
            ),
            *self._ingress.histogram(
                "dapr_component_pubsub_ingress_latencies",
                "The consuming app event processing latency.",
            ),
            *self._egress.counter(
                "dapr_component_pubsub_egress_count",
                "The number of outgoing messages published to the pub/sub component.",
            ),
            *self._egress.histogram(
                "dapr_component_pubsub_egress_latencies",
                "The latency of the response from the pub/sub component.",
            ),
        ]
        return ("\n".join(lines) + "\n").encode()


class CountRequests:
    """ASGI middleware: every HTTP API request in ``dapr_http_server_*``."""

    def __init__(self, app: ASGIApp, metrics: RuntimeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.metrics.http_request(scope["method"], status, elapsed)
