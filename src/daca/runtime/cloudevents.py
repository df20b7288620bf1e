"""CloudEvent envelopes built and read as daprd builds and reads them.

Publishing wraps the request body (``new_envelope``), takes a caller's CloudEvent as it is
(``complete_envelope``) or leaves it raw (``metadata.rawPayload``). Delivery reads the stored bytes
back (``read_envelope``). Sources: dapr/dapr ``pkg/runtime/pubsub/cloudevents.go`` and
components-contrib ``pubsub/envelope.go``, ``contenttype/utils.go``; see docs/runtime.md. The
trace fields are :mod:`daca.runtime.tracecontext`'s, ``expiration`` :mod:`daca.runtime.ttl`'s.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from daca.runtime.godecode import NestingError, first_value, whole_value
from daca.runtime.gojson import marshal
from daca.runtime.ttl import expiration

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
CLOUDEVENTS_PROTOBUF_CONTENT_TYPE = "application/cloudevents+protobuf"
JSON_CONTENT_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"
DEFAULT_CONTENT_TYPE = "text/plain"
DEFAULT_SOURCE = "Dapr"
EVENT_TYPE = "com.dapr.event.sent"
SPEC_VERSION = "1.0"
_OVERRIDABLE = ("id", "source", "type", "subject", "traceid", "traceparent", "tracestate")
_OVERRIDE_PREFIX = "cloudevent."


class EnvelopeError(ValueError):
    """The body cannot be made into, or read as, a CloudEvent."""


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
            return {"data": first_value(body)}
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
        envelope["expiration"] = expiration(ttl_seconds)
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
        envelope = first_value(body)
    except NestingError as exc:
        raise EnvelopeError(str(exc)) from None  # Go's words, as daprd reports them
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
        envelope = whole_value(body)
    except ValueError as exc:
        raise EnvelopeError(f"not a JSON CloudEvent: {exc}") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("not a JSON CloudEvent: expected an object")
    return envelope


def encode(envelope: dict[str, Any]) -> bytes:
    """The envelope bytes given to the broker, as daprd marshals them."""
    return marshal(envelope)
