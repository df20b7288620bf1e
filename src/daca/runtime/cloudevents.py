"""CloudEvent envelopes built and read as daprd builds and reads them.

Publishing wraps the request body (``new_envelope``), takes a caller's CloudEvent as it is
(``complete_envelope``) or leaves it raw (``metadata.rawPayload``). Delivery reads the stored bytes
back (``read_envelope``). Sources: dapr/dapr ``pkg/runtime/pubsub/cloudevents.go``,
``pkg/diagnostics/tracing.go`` and components-contrib ``pubsub/envelope.go``,
``contenttype/utils.go``, ``metadata/utils.go``; see docs/runtime.md.

Trace context is daprd's without a tracing configuration (the runtime exports no traces): the
caller's ``traceparent`` and ``tracestate`` are passed on unchanged (normalised as daprd writes
them), and without a valid ``traceparent`` the fields are ``""``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
CLOUDEVENTS_PROTOBUF_CONTENT_TYPE = "application/cloudevents+protobuf"
JSON_CONTENT_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"
DEFAULT_CONTENT_TYPE = "text/plain"
DEFAULT_SOURCE = "Dapr"
EVENT_TYPE = "com.dapr.event.sent"
SPEC_VERSION = "1.0"
#: The traceparent daprd sends to the app for an event without a valid one (an empty span).
EMPTY_TRACEPARENT = "00-" + "0" * 32 + "-" + "0" * 16 + "-00"
_OVERRIDABLE = ("id", "source", "type", "subject", "traceid", "traceparent", "tracestate")
_OVERRIDE_PREFIX = "cloudevent."
_MAX_DURATION = (2**63 - 1) / 1e9  # Go's time.Duration limit, in seconds


class EnvelopeError(ValueError):
    """The body cannot be made into, or read as, a CloudEvent."""


def new_traceparent(parent: str | None = None) -> str:
    """A W3C traceparent: a child span of ``parent`` when one is given, else a new trace."""
    trace_id = secrets.token_hex(16)
    if parent:
        parts = parent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            trace_id = parts[1]
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


_HEX = re.compile(r"[0-9a-f]+")
_ANY_HEX = re.compile(r"[0-9a-fA-F]+")


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


_TRACESTATE_KEY = re.compile(
    r"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
)
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")


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


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(raw: str) -> bool:
    """``raw`` as Go's ``strconv.ParseBool`` reads it (daprd reads ``rawPayload`` with it)."""
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean (1, t, true, 0, f, false, ...)")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_JSON_SPACE = " \t\n\r"


def go_json_value(raw: bytes | str) -> Any:
    """The first JSON value of ``raw``, as Go's ``json.Decoder.Decode`` reads it.

    Whatever follows a complete value is ignored (``{"a": 1} x`` is the object, ``12x`` is 12),
    but a number cut short (``1.``, ``1e``) is an error. Invalid UTF-8 reads as U+FFFD. Raises
    ``ValueError``.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    if start == len(text):
        raise ValueError("unexpected end of JSON input")
    value, end = _DECODER.raw_decode(text, start)
    if isinstance(value, int | float) and not isinstance(value, bool):
        literal, following = text[start:end], text[end : end + 1]
        cut_fraction = following == "." and not any(c in literal for c in ".eE")
        cut_exponent = following in ("e", "E") and not any(c in literal for c in "eE")
        if cut_fraction or cut_exponent:
            raise ValueError(f"invalid character after {literal!r} in numeric literal")
    return value


def go_json(value: Any) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes it: compact, object keys sorted, HTML-escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    for char, escaped in _GO_ESCAPES:
        text = text.replace(char, escaped)
    return text.encode()


# Only ever inside JSON strings, so replacing them keeps the document the same.
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _now() -> str:
    """Local time as Go's RFC 3339 writes it: whole seconds, ``Z`` for UTC."""
    stamp = datetime.now().astimezone().replace(microsecond=0).isoformat()
    return stamp.removesuffix("+00:00") + "Z" if stamp.endswith("+00:00") else stamp


def _is_media(content_type: str, expected: str) -> bool:
    """components-contrib's ``isContentType``: the whole value, or the part before ``;``."""
    return content_type.lower().partition(";")[0] == expected


def is_json_content_type(content_type: str) -> bool:
    return _is_media(content_type, JSON_CONTENT_TYPE)


def is_cloudevent_content_type(content_type: str) -> bool:
    return _is_media(content_type, CLOUDEVENTS_CONTENT_TYPE)


def is_binary_content_type(content_type: str) -> bool:
    return _is_media(content_type, OCTET_STREAM)


def is_string_content_type(content_type: str) -> bool:
    return content_type.lower().startswith("text/") or _is_media(content_type, "application/xml")


def _data_fields(body: bytes, content_type: str) -> dict[str, Any]:
    # daprd also base64-encodes application/x-protobuf bodies that parse as a protobuf
    # CloudEvent; the runtime does not parse protobuf, so such a body stays a string here.
    if is_binary_content_type(content_type) or _is_media(
        content_type, CLOUDEVENTS_PROTOBUF_CONTENT_TYPE
    ):
        return {"data_base64": base64.b64encode(body).decode("ascii")}
    if is_json_content_type(content_type):
        try:
            return {"data": go_json_value(body)}
        except ValueError:
            pass
    return {"data": body.decode("utf-8", errors="replace")}


def cloudevent_overrides(metadata: Mapping[str, str]) -> dict[str, str]:
    """The ``cloudevent.<field>`` request metadata, matched as daprd matches it (any case)."""
    overrides: dict[str, str] = {}
    for name in _OVERRIDABLE:
        key = _OVERRIDE_PREFIX + name
        if key in metadata:
            overrides[name] = metadata[key]
            continue
        for other, value in metadata.items():
            if other.lower() == key:
                overrides[name] = value
                break
    return overrides


def new_envelope(
    body: bytes,
    *,
    content_type: str | None,
    source: str,
    topic: str,
    pubsub: str,
    traceparent: str,
    tracestate: str = "",
    overrides: Mapping[str, str] | None = None,
    ttl_seconds: float | None = None,
) -> dict[str, Any]:
    """The envelope daprd builds around a published body (``NewCloudEvent``).

    ``overrides`` are the ``cloudevent.*`` fields (:func:`cloudevent_overrides`). An empty ``id``
    becomes a new UUID, an empty ``source`` ``Dapr``; a ``traceparent`` (else ``traceid``)
    override sets both trace fields.
    """
    fields = {"id": "", "source": source, "type": "", "subject": "", "traceparent": ""}
    fields.update(traceid=traceparent, tracestate=tracestate)
    fields.update(overrides or {})
    trace = fields["traceparent"] or fields["traceid"]
    content_type = content_type or DEFAULT_CONTENT_TYPE
    envelope: dict[str, Any] = {
        "id": fields["id"] or str(uuid.uuid4()),
        "source": fields["source"] or DEFAULT_SOURCE,
        "type": fields["type"] or EVENT_TYPE,
        "specversion": SPEC_VERSION,
        "datacontenttype": content_type,
        "topic": topic,
        "pubsubname": pubsub,
        "traceid": trace,
        "traceparent": trace,
        "tracestate": fields["tracestate"],
        "time": _now(),
        **_data_fields(body, content_type),
    }
    if fields["subject"]:
        envelope["subject"] = fields["subject"]
    if ttl_seconds is not None:
        envelope["expiration"] = _expiration(ttl_seconds)
    return envelope


def complete_envelope(
    body: bytes, *, topic: str, pubsub: str, traceparent: str, tracestate: str = ""
) -> dict[str, Any]:
    """A caller-supplied CloudEvent, completed as daprd does (``FromCloudEvent``).

    ``topic`` and ``pubsubname`` are always set; ``time``, and the trace fields when there is no
    ``traceid``, only when absent; ``source`` (``Dapr``), ``type`` and ``specversion`` when
    absent or null. It never invents an ``id``.
    """
    try:
        envelope = go_json_value(body)
    except ValueError as exc:
        raise EnvelopeError(f"the body is not a JSON CloudEvent: {exc}") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("the body is not a JSON CloudEvent: expected an object")
    envelope.setdefault("time", _now())
    if "traceid" not in envelope:
        envelope["traceid"] = envelope["traceparent"] = traceparent
    envelope.setdefault("tracestate", tracestate)
    envelope["topic"], envelope["pubsubname"] = topic, pubsub
    defaults = (("source", DEFAULT_SOURCE), ("type", EVENT_TYPE), ("specversion", SPEC_VERSION))
    for name, default in defaults:
        if envelope.get(name) is None:
            envelope[name] = default
    return envelope


_GO_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def _go_duration(text: str) -> float:
    """Seconds in ``text`` as Go's ``time.ParseDuration`` reads it; ``ValueError`` otherwise."""
    sign, rest = (-1.0, text[1:]) if text[:1] == "-" else (1.0, text.removeprefix("+"))
    if rest == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _GO_DURATION_PART.finditer(rest):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not rest or pos != len(rest) or total > _MAX_DURATION:
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


def message_ttl(metadata: Mapping[str, str]) -> float | None:
    """The ``ttl``/``ttlInSeconds`` metadata in seconds, as daprd reads it (``TryGetTTL``).

    A Go duration (a negative one is 0), else a whole number of seconds above 0; anything else
    is no TTL at all (daprd ignores the error). Keys match in any case; ``ttl`` comes first.
    """
    lowered = {key.lower(): value for key, value in metadata.items()}
    raw = next((lowered[key] for key in ("ttl", "ttlinseconds") if key in lowered), "")
    if not raw:
        return None
    try:
        return min(max(_go_duration(raw), 0.0), _MAX_DURATION)
    except ValueError:
        pass
    if not re.fullmatch(r"[+-]?\d+", raw) or not 0 < int(raw) < 2**63:
        return None
    return min(float(int(raw)), _MAX_DURATION)


def apply_ttl(envelope: dict[str, Any], metadata: Mapping[str, str]) -> None:
    """Add ``expiration`` for a TTL in ``metadata`` (``ApplyMetadata``; no backend has one)."""
    ttl = message_ttl(metadata)
    if ttl is not None:
        envelope["expiration"] = _expiration(ttl)


def _expiration(ttl_seconds: float) -> str:
    expires = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    return expires.replace(microsecond=0).isoformat().replace("+00:00", "Z")


_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def has_expired(envelope: Mapping[str, Any]) -> bool:
    """Whether ``expiration`` (RFC 3339) is past; an unreadable one never expires, as in daprd."""
    raw = envelope.get("expiration")
    if not isinstance(raw, str) or not _RFC3339.fullmatch(raw):
        return False
    try:
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    return expires < datetime.now(UTC)


def raw_payload_envelope(
    body: bytes, *, topic: str, pubsub: str, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The synthetic envelope a ``rawPayload`` subscriber gets (daprd's ``FromRawPayload``).

    The trace fields come from the message ``metadata`` when it has them.
    """
    envelope: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": DEFAULT_SOURCE,
        "type": EVENT_TYPE,
        "specversion": SPEC_VERSION,
        "datacontenttype": OCTET_STREAM,
        "topic": topic,
        "pubsubname": pubsub,
        "data_base64": base64.b64encode(body).decode("ascii"),
    }
    metadata = metadata or {}
    if "traceid" in metadata:
        envelope["traceid"] = metadata["traceid"]
    if "traceparent" in metadata:
        envelope["traceid"] = envelope["traceparent"] = metadata["traceparent"]
    if "tracestate" in metadata:
        envelope["tracestate"] = metadata["tracestate"]
    return envelope


def read_envelope(body: bytes) -> dict[str, Any]:
    """Parse stored envelope bytes; raises :class:`EnvelopeError` when they are not one."""
    try:
        envelope = _DECODER.decode(body.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise EnvelopeError(f"not a JSON CloudEvent: {exc}") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("not a JSON CloudEvent: expected an object")
    return envelope


def encode(envelope: dict[str, Any]) -> bytes:
    """The envelope bytes given to the broker, as daprd marshals them."""
    return go_json(envelope)
