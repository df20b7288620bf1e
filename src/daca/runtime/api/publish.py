"""``/v1.0/publish``: single and bulk publish, with daprd's envelope (dapr-http-api.md §2)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daca.runtime.api.common import RuntimeContext, context, json_body, request_metadata
from daca.runtime.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    EnvelopeError,
    complete_envelope,
    encode,
    is_json_content_type,
    new_envelope,
    new_traceparent,
    parse_go_bool,
)
from daca.runtime.errors import DaprError, StoreError
from daca.runtime.pubsub.base import PubSub

_OVERRIDE_PREFIX = "cloudevent."


def _pubsub(request: Request) -> tuple[RuntimeContext, str, str, PubSub]:
    ctx = context(request)
    name, topic = request.path_params["pubsub"], request.path_params.get("topic", "")
    if not name:
        raise DaprError(404, "ERR_PUBSUB_EMPTY", "pubsub name is empty")
    if not topic:
        raise DaprError(404, "ERR_TOPIC_NAME_EMPTY", f"topic is empty in pubsub {name}")
    pubsub = ctx.components.pubsubs.get(name)
    if pubsub is None:
        raise DaprError(404, "ERR_PUBSUB_NOT_FOUND", f"pubsub {name} is not found")
    return ctx, name, topic, pubsub


def _flag(metadata: Mapping[str, str], name: str) -> bool:
    raw = metadata.get(name)
    if raw is None or raw == "":
        return False
    try:
        return parse_go_bool(raw)
    except ValueError as exc:
        raise DaprError(
            400, "ERR_PUBSUB_REQUEST_METADATA", f"failed deserializing metadata {name}: {exc}"
        ) from None


def _ttl(metadata: Mapping[str, str]) -> int | None:
    raw = metadata.get("ttlInSeconds") or metadata.get("ttl")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DaprError(
            400,
            "ERR_PUBSUB_REQUEST_METADATA",
            f"failed deserializing metadata ttlInSeconds: {raw!r}",
        ) from None


def _check_metadata(metadata: Mapping[str, str]) -> None:
    """Raise ERR_PUBSUB_REQUEST_METADATA for request metadata that cannot be read."""
    _flag(metadata, "rawPayload")
    _ttl(metadata)


def build_message(
    body: bytes,
    content_type: str | None,
    metadata: Mapping[str, str],
    *,
    ctx: RuntimeContext,
    pubsub: str,
    topic: str,
    traceparent: str | None,
) -> bytes:
    """The bytes stored with the broker for one published event."""
    if _flag(metadata, "rawPayload"):
        return body
    trace = new_traceparent(traceparent)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == CLOUDEVENTS_CONTENT_TYPE:
        try:
            envelope = complete_envelope(
                body, source=ctx.app_id, topic=topic, pubsub=pubsub, traceparent=trace
            )
        except EnvelopeError as exc:
            raise DaprError(500, "ERR_PUBSUB_CLOUD_EVENTS_SER", str(exc)) from exc
    else:
        overrides = {
            k[len(_OVERRIDE_PREFIX) :]: v
            for k, v in metadata.items()
            if k.startswith(_OVERRIDE_PREFIX)
        }
        envelope = new_envelope(
            body,
            content_type=content_type,
            source=ctx.app_id,
            topic=topic,
            pubsub=pubsub,
            traceparent=trace,
            overrides=overrides,
            ttl_seconds=_ttl(metadata),
        )
    return encode(envelope)


async def _send(pubsub: PubSub, name: str, topic: str, data: bytes, meta: dict[str, str]) -> None:
    try:
        await pubsub.publish(topic, data, meta)
    except StoreError as exc:
        raise DaprError(
            500,
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            f"error when publishing to topic {topic} in pubsub {name}: {exc}",
        ) from exc


async def publish(request: Request) -> Response:
    ctx, name, topic, pubsub = _pubsub(request)
    metadata = request_metadata(request)
    data = build_message(
        await request.body(),
        request.headers.get("content-type"),
        metadata,
        ctx=ctx,
        pubsub=name,
        topic=topic,
        traceparent=request.headers.get("traceparent"),
    )
    await _send(pubsub, name, topic, data, metadata)
    return Response(status_code=204)


def _entry_body(entry: Mapping[str, Any]) -> tuple[bytes, str]:
    content_type = str(entry.get("contentType") or "")
    event = entry.get("event")
    if isinstance(event, str) and not is_json_content_type(content_type):
        return event.encode(), content_type or "text/plain"
    if content_type.split(";", 1)[0].strip().lower() == CLOUDEVENTS_CONTENT_TYPE:
        return json.dumps(event).encode(), content_type
    return json.dumps(event).encode(), content_type or "application/json"


def _bulk_entries(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(entry, dict) for entry in body):
        raise DaprError(400, "ERR_PUBSUB_EVENTS_SER", "failed deserializing bulk publish request")
    ids = [entry.get("entryId") for entry in body]
    if any(not entry_id for entry_id in ids) or len(set(ids)) != len(ids):
        raise DaprError(
            400, "ERR_PUBSUB_EVENTS_SER", "every entry needs an entryId, unique within the request"
        )
    return body


async def bulk_publish(request: Request) -> Response:
    ctx, name, topic, pubsub = _pubsub(request)
    try:
        body = await json_body(request)
    except DaprError as exc:  # daprd reports an unreadable bulk body as ERR_PUBSUB_EVENTS_SER
        raise DaprError(400, "ERR_PUBSUB_EVENTS_SER", exc.message) from None
    entries, metadata = _bulk_entries(body), request_metadata(request)
    _check_metadata(metadata)  # as daprd, before any entry is published

    async def one(entry: dict[str, Any]) -> dict[str, str] | None:
        meta = {**metadata, **{str(k): str(v) for k, v in (entry.get("metadata") or {}).items()}}
        try:
            body, content_type = _entry_body(entry)
            data = build_message(
                body,
                content_type,
                meta,
                ctx=ctx,
                pubsub=name,
                topic=topic,
                traceparent=request.headers.get("traceparent"),
            )
            await _send(pubsub, name, topic, data, meta)
        except DaprError as exc:
            return {"entryId": str(entry["entryId"]), "error": exc.message}
        return None

    failed = [result for result in await asyncio.gather(*map(one, entries)) if result]
    if not failed:
        return Response(status_code=204)
    body = {"failedEntries": failed, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE"}
    return JSONResponse(body, status_code=500)


routes = [  # bulk first: "/v1.0/publish/{pubsub}/{topic:path}" would also match it
    Route("/v1.0-alpha1/publish/bulk/{pubsub}/{topic:path}", bulk_publish, methods=["POST", "PUT"]),
    Route("/v1.0/publish/bulk/{pubsub}/{topic:path}", bulk_publish, methods=["POST", "PUT"]),
    Route("/v1.0/publish/{pubsub}/{topic:path}", publish, methods=["POST", "PUT"]),
]
