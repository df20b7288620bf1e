"""The runtime's own spans, as daprd records them: one per invocation it forwards and one per
delivery attempt of an event, each the parent of what the called app records.

With tracing off (``daca.telemetry.tracing``) nothing is recorded and the trace context passes
as daprd passes it without a tracing configuration: an invocation gets a fresh span id in the
caller's trace, a delivery the event's own ``traceparent``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import propagate, trace

from daca.runtime.tracecontext import new_traceparent
from daca.telemetry import tracing

_TRACER = "daca.runtime"


@contextlib.contextmanager
def child_span(
    name: str,
    traceparent: str | None,
    tracestate: str | None = None,
    *,
    kind: trace.SpanKind,
    attributes: dict[str, str] | None = None,
    fresh: bool = True,
) -> Iterator[tuple[trace.Span, dict[str, str]]]:
    """A span named ``name``, child of ``traceparent``; yields it and the trace headers the
    callee gets (its ``traceparent``/``tracestate``). Untraced: a non-recording span, and a
    fresh span id in the caller's trace (``fresh``) or the caller's context unchanged."""
    headers: dict[str, str] = {}
    if not tracing.enabled():
        if fresh:
            headers = {"traceparent": new_traceparent(traceparent)}
        else:
            headers = {"traceparent": traceparent} if traceparent else {}
            if traceparent and tracestate:
                headers["tracestate"] = tracestate
        yield trace.INVALID_SPAN, headers
        return
    carrier = {"traceparent": traceparent or ""}
    if tracestate:
        carrier["tracestate"] = tracestate
    parent = propagate.extract(carrier)
    tracer = tracing.tracer(_TRACER)
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes
    ) as span:
        propagate.inject(headers)
        yield span, headers
