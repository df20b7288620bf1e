"""W3C trace context as daprd reads, rewrites and mints it (``pkg/diagnostics/tracing.go``).

The runtime exports no traces, so it answers as daprd without a tracing configuration: a caller's
``traceparent`` and ``tracestate`` are passed on, normalised as daprd writes them, and without a
valid ``traceparent`` both are ``""`` (an event) or the all-zero span (a delivery).
"""

from __future__ import annotations

import re
import secrets

#: The traceparent daprd sends to the app for an event without a valid one (an empty span).
EMPTY_TRACEPARENT = "00-" + "0" * 32 + "-" + "0" * 16 + "-00"
_HEX = re.compile(r"[0-9a-f]+")
_ANY_HEX = re.compile(r"[0-9a-fA-F]+")
_TRACESTATE_KEY = re.compile(
    r"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
)
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")


def new_traceparent(parent: str | None = None) -> str:
    """A W3C traceparent: a child span of ``parent`` when one is given, else a new trace."""
    trace_id = secrets.token_hex(16)
    if parent:
        parts = parent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            trace_id = parts[1]
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def w3c_traceparent(raw: object) -> str:
    """``raw`` as daprd reads and rewrites a traceparent (``SpanContextFromW3CString``), or ``""``.

    Version 00..fe (00 with exactly four parts), a 32-digit trace id and a 16-digit span id in
    lower-case hex, neither all zeros, and flags of which the first byte counts; written back
    as version ``00`` with that flags byte.
    """
    if not isinstance(raw, str) or not raw:
        return ""
    parts = raw.split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or not _ANY_HEX.fullmatch(parts[0]):
        return ""
    version = int(parts[0], 16)
    if version > 254 or (version == 0 and len(parts) != 4):
        return ""
    trace_id, span_id, flags = parts[1], parts[2], parts[3]
    if len(trace_id) != 32 or len(span_id) != 16:
        return ""
    if not _HEX.fullmatch(trace_id) or not _HEX.fullmatch(span_id):
        return ""
    if set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return ""
    if len(flags) < 2 or len(flags) % 2 or not _ANY_HEX.fullmatch(flags):
        return ""
    return f"00-{trace_id}-{span_id}-{flags[:2].lower()}"


def w3c_tracestate(raw: str | None) -> str:
    """A W3C tracestate as OpenTelemetry parses and writes it; ``""`` when it is invalid."""
    members: list[str] = []
    keys: set[str] = set()
    for member in (raw or "").split(","):
        member = member.strip(" \t")
        if not member:
            continue
        key, equals, value = member.partition("=")
        valid = equals and _TRACESTATE_KEY.fullmatch(key) and _TRACESTATE_VALUE.fullmatch(value)
        if not valid or key in keys or len(members) == 32:
            return ""
        keys.add(key)
        members.append(f"{key}={value}")
    return ",".join(members)


def incoming_trace(traceparent: str | None, tracestate: str | None) -> tuple[str, str]:
    """The (traceparent, tracestate) daprd puts on an event published with these headers."""
    parent = w3c_traceparent(traceparent)
    return (parent, w3c_tracestate(tracestate)) if parent else ("", "")
