"""``/v1.0/publish``: single and bulk publish, with daprd's envelope (dapr-http-api.md §2).

As daprd's ``onPublish`` and ``onBulkPublish`` (``pkg/api/http/http.go``): the pub/sub is checked
first, then ``rawPayload``, then the body; errors carry daprd's ``details`` (ResourceInfo and
ErrorInfo, ``pkg/api/errors/pubsub.go``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daca.runtime.api.common import RuntimeContext, context, request_metadata
from daca.runtime.cloudevents import (
    EnvelopeError,
    apply_ttl,
    cloudevent_overrides,
    complete_envelope,
    encode,
    go_json,
    go_json_value,
    incoming_trace,
    is_binary_content_type,
    is_cloudevent_content_type,
    is_json_content_type,
    is_string_content_type,
    new_envelope,
    parse_go_bool,
)
from daca.runtime.errors import DaprError, StoreError
from daca.runtime.pubsub.base import PubSub

_RESOURCE_INFO = "type.googleapis.com/google.rpc.ResourceInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_CONTENT_MISMATCH = "error: mismatch between contentType and event"


def pubsub_error(
    status: int,
    code: str,
    reason: str,
    message: str,
    *,
    pubsub: str,
    metadata: Mapping[str, str],
    resource: bool = True,
) -> DaprError:
    """A pub/sub error with the ``details`` daprd's error builder adds."""
    details: list[dict[str, Any]] = []
    if resource:
        details.append(
            {
                "@type": _RESOURCE_INFO,
                "description": message,
                "owner": "",
                "resource_name": pubsub,
                "resource_type": "pubsub",
            }
        )
    details.append(
        {"@type": _ERROR_INFO, "domain": "dapr.io", "metadata": dict(metadata), "reason": reason}
    )
    return DaprError(status, code, message, details=details)


class _Call:
    """One publish request: the pub/sub it names, its topic and metadata."""

    def __init__(self, request: Request) -> None:
        self.ctx: RuntimeContext = context(request)
        self.name: str = request.path_params["pubsub"]
        self.topic: str = request.path_params.get("topic", "")
        self.metadata = request_metadata(request)
        self.trace = incoming_trace(
            request.headers.get("traceparent"), request.headers.get("tracestate")
        )
        meta = self.metadata
        if not self.name:
            raise self.error(
                404, "ERR_PUBSUB_EMPTY", "DAPR_PUBSUB_NAME_EMPTY", "pubsub name is empty"
            )
        pubsub = self.ctx.components.pubsubs.get(self.name)
        if pubsub is None:
            message = f"pubsub {self.name} is not found"
            raise pubsub_error(
                404, "ERR_PUBSUB_NOT_FOUND", "DAPR_PUBSUB_NOT_FOUND", message,
                pubsub=self.name, metadata=meta, resource=False,
            )  # fmt: skip
        self.pubsub: PubSub = pubsub
        if not self.topic:
            message = f"topic is empty in pubsub {self.name}"
            raise self.error(404, "ERR_TOPIC_NAME_EMPTY", "DAPR_PUBSUB_TOPIC_NAME_EMPTY", message)
        self.raw = self._raw_payload()

    def error(
        self,
        status: int,
        code: str,
        reason: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
    ) -> DaprError:
        meta = self.metadata if metadata is None else metadata
        return pubsub_error(status, code, reason, message, pubsub=self.name, metadata=meta)

    def _raw_payload(self) -> bool:
        raw = self.metadata.get("rawPayload", "")
        if not raw:
            return False
        try:
            return parse_go_bool(raw)
        except ValueError:
            problem = f"rawPayload value must be a valid boolean: actual is '{raw}'"
            message = f"failed deserializing metadata. Error: {problem}"
            raise self.error(
                400, "ERR_PUBSUB_REQUEST_METADATA", "DAPR_PUBSUB_METADATA_DESERIALIZATION", message
            ) from None

    def app_error(self, status: int, code: str, reason: str, message: str, cause: str) -> DaprError:
        meta = {"appID": self.ctx.app_id, **({"error": cause} if cause else {})}
        return self.error(status, code, reason, message, meta)

    def message(self, body: bytes, content_type: str, metadata: Mapping[str, str] | None) -> bytes:
        """The bytes given to the broker for one event (``NewCloudEvent`` + ``ApplyMetadata``)."""
        if self.raw:
            return body
        meta = metadata or {}
        traceparent, tracestate = self.trace
        if is_cloudevent_content_type(content_type):
            try:
                envelope = complete_envelope(
                    body,
                    topic=self.topic,
                    pubsub=self.name,
                    traceparent=traceparent,
                    tracestate=tracestate,
                )
            except EnvelopeError as exc:
                raise self.app_error(
                    500, "ERR_PUBSUB_CLOUD_EVENTS_SER", "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
                    "cannot create cloudevent", str(exc),
                ) from exc  # fmt: skip
        else:
            envelope = new_envelope(
                body,
                content_type=content_type,
                source=self.ctx.app_id,
                topic=self.topic,
                pubsub=self.name,
                traceparent=traceparent,
                tracestate=tracestate,
                overrides=cloudevent_overrides(meta),
            )
        apply_ttl(envelope, meta)
        return encode(envelope)

    def publish_failed(self, exc: Exception) -> DaprError:
        message = f"error when publishing to topic {self.topic} in pubsub {self.name}: {exc}"
        meta = {"topic": self.topic, "error": str(exc)}
        return self.error(
            500, "ERR_PUBSUB_PUBLISH_MESSAGE", "DAPR_PUBSUB_PUBLISH_MESSAGE", message, meta
        )


async def publish(request: Request) -> Response:
    call = _Call(request)
    data = call.message(
        await request.body(), request.headers.get("content-type", ""), call.metadata
    )
    try:
        await call.pubsub.publish(call.topic, data, call.metadata)
    except StoreError as exc:
        raise call.publish_failed(exc) from exc
    return Response(status_code=204)


# --- bulk ----------------------------------------------------------------------------------------

_ENTRY_TYPE = "http.bulkPublishMessageEntry"
_FIELDS = {
    "entryid": "entryId",
    "event": "event",
    "contenttype": "contentType",
    "metadata": "metadata",
}


class _Entry:
    def __init__(self) -> None:
        self.entry_id = ""
        self.event: Any = None
        self.content_type = ""
        self.metadata: dict[str, str] | None = None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _mismatch(value: Any, target: str, field: str | None = None) -> ValueError:
    into = f"Go struct field {_ENTRY_TYPE.split('.')[1]}.{field}" if field else "Go value"
    return ValueError(f"json: cannot unmarshal {_json_type(value)} into {into} of type {target}")


def _string_field(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _mismatch(value, "string", field)
    return value


def _entry(item: Any) -> _Entry:
    """One element as Go decodes it into ``bulkPublishMessageEntry`` (keys match in any case)."""
    entry = _Entry()
    if item is None:
        return entry
    if not isinstance(item, dict):
        raise _mismatch(item, _ENTRY_TYPE)
    for key, value in item.items():
        field = _FIELDS.get(key.lower())
        if field == "entryId":
            entry.entry_id = _string_field(value, field)
        elif field == "contentType":
            entry.content_type = _string_field(value, field)
        elif field == "event":
            entry.event = value
        elif field == "metadata":
            if value is not None and not isinstance(value, dict):
                raise _mismatch(value, "map[string]string", field)
            entry.metadata = (
                None if value is None else {k: _string_field(v, field) for k, v in value.items()}
            )
    return entry


def _decode_entries(body: bytes) -> list[_Entry]:
    """The request body as Go's ``json.Decoder`` reads it into ``[]bulkPublishMessageEntry``."""
    if not body.strip(b" \t\r\n"):
        raise ValueError("EOF")
    try:
        items = go_json_value(body)
    except json.JSONDecodeError as exc:
        rest = exc.doc[exc.pos :].strip(" \t\r\n")
        if not rest:
            raise ValueError("unexpected EOF") from None
        raise ValueError(f"invalid character {rest[0]!r} looking for beginning of value") from None
    if items is None:
        return []
    if not isinstance(items, list):
        raise _mismatch(items, "[]" + _ENTRY_TYPE)
    return [_entry(item) for item in items]


def _event_bytes(event: Any, content_type: str) -> bytes:
    """daprd's ``ConvertEventToBytes``; ``ValueError`` with its message."""
    if is_binary_content_type(content_type):
        if not isinstance(event, str):
            raise ValueError(_CONTENT_MISMATCH)
        try:
            return base64.b64decode(event.replace("\r", "").replace("\n", ""), validate=True)
        except binascii.Error:
            problem = "unable to decode base64 application/octect-stream data: illegal base64 data"
            raise ValueError(f"error: {problem}") from None
    if is_string_content_type(content_type):
        if not isinstance(event, str):
            raise ValueError(_CONTENT_MISMATCH)
        return event.encode()
    if is_json_content_type(content_type) or is_cloudevent_content_type(content_type):
        return go_json(event)
    raise ValueError(_CONTENT_MISMATCH)


async def bulk_publish(request: Request) -> Response:
    call = _Call(request)
    try:
        entries = _decode_entries(await request.body())
    except ValueError as exc:
        message = (
            f"error when unmarshaling the request for topic {call.topic} pubsub {call.name}: {exc}"
        )
        raise call.app_error(
            400, "ERR_PUBSUB_EVENTS_SER", "DAPR_PUBSUB_UNMARSHAL_EVENTS", message, ""
        ) from None
    prepared: list[tuple[str, bytes, str, dict[str, str] | None]] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            data = _event_bytes(entry.event, entry.content_type)
        except ValueError as exc:
            message = (
                f"error when marshalling cloud event envelope for topic {call.topic} "
                f"pubsub {call.name}: {exc}"
            )
            raise call.app_error(
                400, "ERR_PUBSUB_EVENTS_SER", "DAPR_PUBSUB_MARSHAL_ENVELOPE", message, str(exc)
            ) from None
        # Request metadata fills in an entry's only when the entry has metadata (as daprd does).
        meta = None if entry.metadata is None else {**call.metadata, **entry.metadata}
        if not entry.entry_id or entry.entry_id in seen:
            cause = "entryId is duplicated or not present for entry"
            where = f"topic {call.topic} pubsub {call.name}"
            message = f"error marshaling events to bytes for {where}. error: {cause}"
            raise call.app_error(
                400, "ERR_PUBSUB_EVENTS_SER", "DAPR_PUBSUB_MARSHAL_EVENTS", message, cause
            )
        seen.add(entry.entry_id)
        prepared.append((entry.entry_id, data, entry.content_type, meta))
    messages = [
        (entry_id, call.message(data, ct, meta), meta) for entry_id, data, ct, meta in prepared
    ]

    async def one(entry_id: str, data: bytes, meta: dict[str, str] | None) -> dict[str, str] | None:
        try:
            await call.pubsub.publish(call.topic, data, meta)
        except StoreError as exc:
            return {"entryId": entry_id, "error": str(exc)}
        return None

    results = await asyncio.gather(*(one(*message) for message in messages))
    failed = [result for result in results if result]
    if not failed:
        return Response(status_code=204)
    body = {"failedEntries": failed, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE"}
    return JSONResponse(body, status_code=500)


routes = [  # bulk first: "/v1.0/publish/{pubsub}/{topic:path}" would also match it
    Route("/v1.0-alpha1/publish/bulk/{pubsub}/{topic:path}", bulk_publish, methods=["POST", "PUT"]),
    Route("/v1.0/publish/bulk/{pubsub}/{topic:path}", bulk_publish, methods=["POST", "PUT"]),
    Route("/v1.0/publish/{pubsub}/{topic:path}", publish, methods=["POST", "PUT"]),
]
