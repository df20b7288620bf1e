"""Bulk delivery of events to the app: daprd's ``bulkSubscribe`` over HTTP.

A subscription with ``bulkSubscribe.enabled`` hands each message to a :class:`Batcher`
(:mod:`daca.runtime.batching`) and delivers each batch as daprd's ``bulkSubscribeTopic``
(``pkg/runtime/subscription/bulksubscription.go``) and HTTP ``DeliverBulk``
(``postman/http/http.go``) do:

1. per entry: the CloudEvent read as JSON (unreadable: the entry fails), or for ``rawPayload``
   the message base64-encoded with content type ``application/octet-stream``; an expired event,
   or one that matches no route, goes to the dead-letter topic (if any) and is acknowledged;
   a route whose match fails to evaluate fails the entry;
2. the entries grouped by route; per route one ``POST`` of ``application/json``
   ``{"id", "type": "com.dapr.event.sent.bulk", "topic", "pubsubname", "metadata", "entries"}``;
3. the answer read by :func:`read_statuses`; DROP entries go to the dead-letter topic at once;
   a 404 acknowledges every entry and sends none to the dead-letter topic (as daprd does);
4. failed entries, and only those, sent again after each delay of the inbound retry policy
   (``bulkresiliency.go``);
5. entries still failed then: to the dead-letter topic, else their handlers raise and the broker
   keeps the messages (the same difference from daprd >= 1.17 as one-by-one delivery).
"""

from __future__ import annotations

import base64
import functools
import logging
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from opentelemetry.trace import StatusCode

from daca.runtime.batching import Batcher, Pending
from daca.runtime.cel import MatchError
from daca.runtime.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    OCTET_STREAM,
    EnvelopeError,
    read_envelope,
)
from daca.runtime.delivery import DeliveryBase, DeliveryFailedError, Outcome
from daca.runtime.godecode import first_value
from daca.runtime.gojson import marshal
from daca.runtime.pubsub.base import Message, Subscription
from daca.runtime.tracecontext import EMPTY_TRACEPARENT, w3c_traceparent
from daca.runtime.ttl import has_expired

logger = logging.getLogger(__name__)

BULK_EVENT_TYPE = "com.dapr.event.sent.bulk"
_STATUSES = {"SUCCESS": Outcome.SUCCESS, "DROP": Outcome.DROP}


class _UnreadableAnswerError(ValueError):
    pass


def _field(value: object, name: str, kind: type | tuple[type, ...]) -> Any:
    """``value[name]`` as Go decodes a struct field: the key in any case (the last such key
    wins), ``null`` as absent; a value of another type is an error."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _UnreadableAnswerError(f"expected an object, got {value!r}")
    found = None
    for key, item in value.items():
        if key.lower() == name.lower():
            found = item
    if found is not None and not isinstance(found, kind):
        raise _UnreadableAnswerError(f"{name}: unexpected {found!r}")
    return found


def _answered(content: bytes) -> dict[str, str]:
    """entryId -> status of a 2xx body ``{"statuses": [{"entryId", "status"}]}``."""
    try:
        body = first_value(content)
    except ValueError as exc:
        raise _UnreadableAnswerError(str(exc)) from None
    answered: dict[str, str] = {}
    for item in _field(body, "statuses", list) or ():
        entry_id = _field(item, "entryId", str) or ""
        answered[entry_id] = _field(item, "status", str) or ""
    return answered


def read_statuses(status: int, content: bytes, entry_ids: Collection[str]) -> dict[str, Outcome]:
    """Each entry's outcome from the app's answer to a bulk POST, as daprd's ``DeliverBulk``
    reads it: 404 drops every entry; another non-2xx, or a 2xx body Go cannot decode into
    ``{"statuses": [...]}``, retries every entry; otherwise SUCCESS and DROP as answered, and
    RETRY for RETRY, an empty or unknown status, or no answer. Unknown entryIds are ignored."""
    if status == 404:
        return dict.fromkeys(entry_ids, Outcome.DROP)
    if not 200 <= status < 300:
        return dict.fromkeys(entry_ids, Outcome.RETRY)
    try:
        answered = _answered(content)
    except _UnreadableAnswerError as exc:
        logger.warning("the app's answer to a bulk delivery cannot be read: %s", exc)
        return dict.fromkeys(entry_ids, Outcome.RETRY)
    for unknown in answered.keys() - set(entry_ids):
        logger.warning("the app answered a bulk delivery for unknown entry %r; ignored", unknown)
    return {i: _STATUSES.get(answered.get(i, ""), Outcome.RETRY) for i in entry_ids}


@dataclass(frozen=True, slots=True)
class _Entry:
    """A message ready to send: its waiting handler, its bulk entry and its CloudEvent."""

    pending: Pending
    item: dict[str, Any]
    envelope: Mapping[str, Any]


class _EntryFailedError(Exception):
    """The entry cannot be sent (unreadable, no route could be chosen)."""


class _BulkSubscription(Subscription):
    """The backend's subscription and its batcher, closed together: handlers waiting in the
    pending batch are released first (their messages stay unacknowledged), so the backend's
    wait for its handlers is short; then the batcher's task ends."""

    def __init__(self, inner: Subscription, batcher: Batcher) -> None:
        self._inner = inner
        self._batcher = batcher

    async def close(self) -> None:
        self._batcher.close()
        try:
            await self._inner.close()
        finally:
            await self._batcher.stop()


class BulkDelivery(DeliveryBase):
    """Delivers one subscription's messages to the app in batches (the handler given to the
    backend; :meth:`subscription` wraps what the backend's ``subscribe`` returned)."""

    @functools.cached_property
    def _batcher(self) -> Batcher:
        bulk = self.spec.bulk_subscribe
        name = f"{self.spec.pubsubname}/{self.spec.topic}"
        return Batcher(self._flush, size=bulk.messages, wait=bulk.await_seconds, name=name)

    async def __call__(self, message: Message) -> None:
        await self._batcher.submit(message)

    def subscription(self, inner: Subscription) -> Subscription:
        return _BulkSubscription(inner, self._batcher)

    async def _flush(self, batch: list[Pending]) -> None:
        routes: dict[str, list[_Entry]] = {}
        failed: list[Pending] = []
        for pending in batch:
            try:
                prepared = await self._prepare(pending)
            except _EntryFailedError:
                failed.append(pending)
                continue
            if prepared is not None:
                routes.setdefault(prepared[0], []).append(prepared[1])
        for route, entries in routes.items():
            failed += await self._deliver_route(route, entries)
        await self._settle(batch, failed)

    async def _prepare(self, pending: Pending) -> tuple[str, _Entry] | None:
        """The route and entry of a message; ``None`` when it is settled without sending."""
        message = pending.message
        try:
            raw = self._raw_payload()
            envelope = self._raw_envelope(message) if raw else read_envelope(message.data)
        except EnvelopeError as exc:
            topic, entry_id = self.spec.topic, pending.entry_id
            logger.error("bulk delivery on %s: entry %s: %s", topic, entry_id, exc)
            raise _EntryFailedError from None
        if not raw and has_expired(envelope):
            await self._dead_letter_quietly(message, f"event {envelope.get('id')} expired")
            return None
        try:
            route = self._router.route(envelope)
        except MatchError:
            raise _EntryFailedError from None
        if route is None:
            await self._dead_letter_quietly(message, f"event {envelope.get('id')} has no route")
            return None
        event = base64.b64encode(message.data).decode("ascii") if raw else envelope
        item = {
            "entryId": pending.entry_id,
            "event": event,
            "metadata": message.metadata,
            "contentType": OCTET_STREAM if raw else CLOUDEVENTS_CONTENT_TYPE,
        }
        return route, _Entry(pending, item, envelope)

    async def _deliver_route(self, route: str, entries: list[_Entry]) -> list[Pending]:
        """POST ``entries`` to ``route``, the failed ones again per the retry policy; the ones
        still failed at the end."""
        envelope_id = str(uuid.uuid4())  # one per route, the same on every retry (as daprd)
        remaining = entries

        async def attempt() -> list[_Entry]:
            nonlocal remaining
            failed = await self._post_bulk(route, envelope_id, remaining)
            remaining = [entry for entry in remaining if entry.pending.entry_id in failed]
            return remaining

        left = await self._with_retries(attempt, bool)
        return [entry.pending for entry in left]

    def _body(self, envelope_id: str, entries: list[_Entry]) -> bytes:
        return marshal(
            {
                "id": envelope_id,
                "type": BULK_EVENT_TYPE,
                "topic": self.spec.topic,
                "pubsubname": self.spec.pubsubname,
                "metadata": {"pubsubName": self.spec.pubsubname},
                "entries": [entry.item for entry in entries],
            }
        )

    async def _post_bulk(self, route: str, envelope_id: str, entries: list[_Entry]) -> set[str]:
        """One POST of ``entries``; the entryIds that failed."""
        headers = {"content-type": "application/json", "pubsubname": self.spec.pubsubname}
        ids = [entry.pending.entry_id for entry in entries]
        with self._consumer_span(route, _traceparent(entries), None) as (span, trace_headers):
            headers.update(trace_headers)
            started = time.perf_counter()
            try:
                body = self._body(envelope_id, entries)
                status, content = await self._send(self._url(route), body, headers, self._limit())
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("bulk delivery to %s failed: %r", route, exc)
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                status, answers = 0, dict.fromkeys(ids, Outcome.RETRY)
            else:
                answers = read_statuses(status, content, ids)
            for outcome in answers.values():
                self._count(outcome, started)
        await self._dropped(entries, answers, status)
        failed = {entry_id for entry_id, outcome in answers.items() if outcome is Outcome.RETRY}
        if failed:
            logger.warning(
                "bulk delivery on %s: %d of %d entries failed (status %d)",
                self.spec.topic, len(failed), len(ids), status,
            )  # fmt: skip
        return failed

    async def _dropped(
        self, entries: list[_Entry], answers: Mapping[str, Outcome], status: int
    ) -> None:
        """DROP answers to the dead-letter topic; a 404 sends none there (daprd does not)."""
        if status == 404:
            logger.error(
                "bulk delivery on %s: the app answered 404; %d entries dropped",
                self.spec.topic, len(entries),
            )  # fmt: skip
            return
        for entry in entries:
            if answers[entry.pending.entry_id] is Outcome.DROP:
                reason = f"the app dropped event {entry.envelope.get('id')}"
                await self._dead_letter_quietly(entry.pending.message, reason)

    async def _dead_letter_quietly(self, message: Message, reason: str) -> None:
        """To the dead-letter topic; a failure is logged and the message acknowledged all the
        same, as daprd ignores this publish's error."""
        try:
            await self._dead_letter(message, reason)
        except Exception as exc:
            logger.error("%s; sending it to the dead-letter topic failed: %r", reason, exc)

    async def _settle(self, batch: list[Pending], failed: list[Pending]) -> None:
        """Acknowledge the batch but what failed; failures go to the dead-letter topic, and
        without one (or when that publish fails) stay with the broker."""
        kept = {pending.entry_id for pending in failed}
        if self.spec.dead_letter_topic:
            for pending in failed:
                try:
                    await self._dead_letter(pending.message, f"entry {pending.entry_id} failed")
                except Exception as exc:
                    logger.error("sending entry %s to the dead-letter topic failed: %r",
                                 pending.entry_id, exc)  # fmt: skip
                else:
                    kept.discard(pending.entry_id)
        for pending in batch:
            if pending.entry_id not in kept:
                pending.ack()
                continue
            error = f"entry {pending.entry_id} on {self.spec.topic} failed; left with the broker"
            pending.fail(DeliveryFailedError(error))


def _traceparent(entries: list[_Entry]) -> str:
    """The request's ``traceparent`` as daprd makes it: a span is started for each entry whose
    event has ``traceparent`` (else ``traceid``) and the last one is the request's; an empty
    span's when none can be read."""
    trace = None
    for entry in entries:
        value = entry.envelope.get("traceparent")
        value = entry.envelope.get("traceid") if value is None else value
        trace = value if value is not None else trace
    return w3c_traceparent(trace) or EMPTY_TRACEPARENT
