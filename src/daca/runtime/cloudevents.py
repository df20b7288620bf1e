"""CloudEvent envelopes built and read as daprd builds and reads them.

Publishing wraps the request body (``new_envelope``), takes a caller's CloudEvent as it is
(``complete_envelope``) or leaves it raw (``metadata.rawPayload``). Delivery reads the stored bytes
back (``read_envelope``). Sources: dapr/dapr ``pkg/runtime/pubsub/cloudevents.go`` and
components-contrib ``pubsub/envelope.go``; see docs/runtime.md.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_CONTENT_TYPE = "text/plain"
EVENT_TYPE = "com.dapr.event.sent"
SPEC_VERSION = "1.0"
_OVERRIDABLE = ("id", "source", "type", "subject", "traceid", "traceparent", "tracestate")


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


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(raw: str) -> bool:
    """``raw`` as Go's ``strconv.ParseBool`` reads it (daprd reads ``rawPayload`` with it)."""
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean (1, t, true, 0, f, false, ...)")


def _now() -> str:
    """Local time as Go's RFC 3339 writes it: whole seconds, ``Z`` for UTC."""
    stamp = datetime.now().astimezone().replace(microsecond=0).isoformat()
    return stamp.removesuffix("+00:00") + "Z" if stamp.endswith("+00:00") else stamp


def is_json_content_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _data_fields(body: bytes, content_type: str) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/octet-stream":
        return {"data_base64": base64.b64encode(body).decode("ascii")}
    text = body.decode("utf-8", errors="replace")
    if is_json_content_type(content_type):
        try:
            return {"data": json.loads(body)}
        except ValueError:
            return {"data": text}
    return {"data": text}


def new_envelope(
    body: bytes,
    *,
    content_type: str | None,
    source: str,
    topic: str,
    pubsub: str,
    traceparent: str,
    overrides: dict[str, str] | None = None,
    ttl_seconds: int | None = None,
) -> dict[str, Any]:
    """The envelope daprd builds around a published body."""
    content_type = content_type or DEFAULT_CONTENT_TYPE
    envelope: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": source,
        "type": EVENT_TYPE,
        "specversion": SPEC_VERSION,
        "datacontenttype": content_type,
        "topic": topic,
        "pubsubname": pubsub,
        "traceid": traceparent,
        "traceparent": traceparent,
        "tracestate": "",
        "time": _now(),
        **_data_fields(body, content_type),
    }
    for name, value in (overrides or {}).items():
        if name in _OVERRIDABLE:
            envelope[name] = value
    if ttl_seconds is not None:
        envelope["expiration"] = _expiration(ttl_seconds)
    return envelope


def complete_envelope(
    body: bytes, *, source: str, topic: str, pubsub: str, traceparent: str
) -> dict[str, Any]:
    """A caller-supplied CloudEvent, completed as daprd does (it never invents an ``id``)."""
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise EnvelopeError(f"the body is not a JSON CloudEvent: {exc}") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("the body is not a JSON CloudEvent: expected an object")
    envelope["topic"], envelope["pubsubname"] = topic, pubsub
    for name, default in (("time", _now()), ("traceid", traceparent)):
        envelope.setdefault(name, default)
    envelope.setdefault("traceparent", traceparent)
    envelope.setdefault("tracestate", "")
    for name, default in (("source", source), ("type", EVENT_TYPE), ("specversion", SPEC_VERSION)):
        if not envelope.get(name):
            envelope[name] = default
    return envelope


def _expiration(ttl_seconds: int) -> str:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl_seconds)
    return expires.isoformat().replace("+00:00", "Z")


def has_expired(envelope: dict[str, Any]) -> bool:
    raw = envelope.get("expiration")
    if not isinstance(raw, str) or not raw:
        return False
    try:
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires < datetime.now(UTC)


def raw_payload_envelope(body: bytes, *, topic: str, pubsub: str, source: str) -> dict[str, Any]:
    """The synthetic envelope a ``rawPayload`` subscriber gets (daprd's ``FromRawPayload``)."""
    return {
        "id": str(uuid.uuid4()),
        "source": source,
        "type": EVENT_TYPE,
        "specversion": SPEC_VERSION,
        "datacontenttype": "application/octet-stream",
        "topic": topic,
        "pubsubname": pubsub,
        "data_base64": base64.b64encode(body).decode("ascii"),
    }


def read_envelope(body: bytes) -> dict[str, Any]:
    """Parse stored envelope bytes; raises :class:`EnvelopeError` when they are not one."""
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise EnvelopeError(f"not a JSON CloudEvent: {exc}") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("not a JSON CloudEvent: expected an object")
    return envelope


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
