"""``/v1.0/publish``: single and bulk publish, with daprd's envelope (dapr-http-api.md §2).

As daprd's ``onPublish`` and ``onBulkPublish`` (``pkg/api/http/http.go``): the pub/sub is checked
first; a single publish then reads its body (a body over the size limit is a failed publish, 500)
and ``rawPayload``, a bulk publish ``rawPayload`` and then its body (:mod:`.bulkentries`).
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daca.runtime.api.bodylimit import BodyTooLargeError, read_body
from daca.runtime.api.bulkentries import Entry, decode_entries, event_bytes
from daca.runtime.api.publishcall import PublishCall
from daca.runtime.errors import PubsubEventsSer, StoreError


async def publish(request: Request) -> Response:
    call = PublishCall(request)
    try:
        body = await read_body(request)
    except BodyTooLargeError as exc:
        raise call.publish_failed(exc) from None
    call.read_raw_payload()
    data = call.message(body, request.headers.get("content-type", ""), call.metadata)
    started = time.perf_counter()
    try:
        await call.pubsub.publish(call.topic, data, call.metadata)
    except StoreError as exc:
        call.ctx.metrics.egress(call.name, call.topic, False, _ms_since(started))
        raise call.publish_failed(exc) from exc
    call.ctx.metrics.egress(call.name, call.topic, True, _ms_since(started))
    return Response(status_code=204)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def _entries(call: PublishCall, request: Request) -> list[Entry]:
    """The bulk body's entries; what Go cannot decode is daprd's 400."""
    try:
        body, cut = await read_body(request), False
    except BodyTooLargeError as exc:
        body, cut = exc.head, True
    try:
        return decode_entries(body, cut=cut)
    except ValueError as exc:
        message = (
            f"error when unmarshaling the request for topic {call.topic} pubsub {call.name}: {exc}"
        )
        raise call.app_error(PubsubEventsSer, "DAPR_PUBSUB_UNMARSHAL_EVENTS", message, "") from None


def _event_data(call: PublishCall, entry: Entry) -> bytes:
    try:
        return event_bytes(entry.event, entry.content_type)
    except ValueError as exc:
        message = (
            f"error when marshalling cloud event envelope for topic {call.topic} "
            f"pubsub {call.name}: {exc}"
        )
        raise call.app_error(
            PubsubEventsSer, "DAPR_PUBSUB_MARSHAL_ENVELOPE", message, str(exc)
        ) from None


Prepared = tuple[str, bytes, dict[str, str] | None]


def _messages(call: PublishCall, entries: list[Entry]) -> list[Prepared]:
    """Each entry's id, broker message and metadata, after every entry has been checked."""
    prepared: list[tuple[Entry, bytes, dict[str, str] | None]] = []
    seen: set[str] = set()
    for entry in entries:
        data = _event_data(call, entry)
        # Request metadata fills in an entry's only when the entry has metadata (as daprd does).
        meta = None if entry.metadata is None else {**call.metadata, **entry.metadata}
        if not entry.entry_id or entry.entry_id in seen:
            cause = "entryId is duplicated or not present for entry"
            where = f"topic {call.topic} pubsub {call.name}"
            message = f"error marshaling events to bytes for {where}. error: {cause}"
            raise call.app_error(PubsubEventsSer, "DAPR_PUBSUB_MARSHAL_EVENTS", message, cause)
        seen.add(entry.entry_id)
        prepared.append((entry, data, meta))
    return [
        (entry.entry_id, call.message(data, entry.content_type, meta), meta)
        for entry, data, meta in prepared
    ]


async def bulk_publish(request: Request) -> Response:
    call = PublishCall(request)
    call.read_raw_payload()
    messages = _messages(call, await _entries(call, request))

    async def one(entry_id: str, data: bytes, meta: dict[str, str] | None) -> dict[str, str] | None:
        started = time.perf_counter()
        try:
            await call.pubsub.publish(call.topic, data, meta)
        except StoreError as exc:
            call.ctx.metrics.egress(call.name, call.topic, False, _ms_since(started))
            return {"entryId": entry_id, "error": str(exc)}
        call.ctx.metrics.egress(call.name, call.topic, True, _ms_since(started))
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
