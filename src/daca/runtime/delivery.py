"""Delivery of events to the app, read the way daprd reads them.

For each subscription (:mod:`daca.runtime.subscriptions`) the runtime consumes the topic from its
pub/sub backend and, per message:

1. reads the stored CloudEvent (or builds daprd's synthetic one for ``rawPayload``);
2. picks the route: the first ``routes.rules`` entry whose ``match`` holds, else the default;
3. POSTs the envelope to the app as ``application/cloudevents+json`` and reads the answer
   (:func:`read_outcome`): SUCCESS, RETRY or DROP;
4. retries RETRY answers with the component's inbound ``Resiliency`` policy (none configured: no
   retry, as in daprd);
5. hands DROP answers, unroutable, expired, unreadable or undeliverable events (metadata that
   cannot be a header) and, once retries run out, failed events to the dead-letter topic. With
   no dead-letter topic a failed event stays with the broker and is delivered again later
   (daprd <= 1.16 behaviour on Redis: nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp
from opentelemetry.trace import Span, SpanKind, StatusCode

from daca.runtime.appchannel import AppChannel, request_body
from daca.runtime.cel import MatchError
from daca.runtime.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    EnvelopeError,
    encode,
    raw_payload_envelope,
    read_envelope,
)
from daca.runtime.godecode import first_value
from daca.runtime.gofmt import parse_go_bool
from daca.runtime.headers import UndeliverableError, delivery_headers
from daca.runtime.metrics import RuntimeMetrics
from daca.runtime.pubsub.base import Message, PubSub
from daca.runtime.resiliency import retry_delays
from daca.runtime.resources import RetryPolicy, SubscriptionSpec
from daca.runtime.spans import child_span
from daca.runtime.subscriptions import Router
from daca.runtime.ttl import has_expired

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Outcome(enum.Enum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


#: A connection that closed before any byte of the answer: nothing was answered.
_UNANSWERED = (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError)


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    limit: aiohttp.ClientTimeout,
) -> tuple[int, bytes]:
    async with session.post(
        url, data=request_body(body), headers=headers, timeout=limit
    ) as response:
        return response.status, await response.read()


class DeliveryFailedError(Exception):
    """Retries ran out and there is no dead-letter topic: the broker keeps the message."""


def read_outcome(status: int, content: bytes) -> Outcome:
    """The app's answer as daprd reads it (dapr-http-api.md §3.4, ``postman/http``).

    A 2xx body is decoded as Go decodes it into ``{"status": string}``: the first JSON value, the
    key in any case; a body that is not such an object (not JSON, another type of ``status``)
    is a success.
    """
    if status == 404:
        return Outcome.DROP
    if not 200 <= status < 300:
        return Outcome.RETRY
    try:
        body = first_value(content)
    except ValueError:
        return Outcome.SUCCESS
    answer = ""
    for key, value in body.items() if isinstance(body, dict) else ():
        if key.lower() != "status" or value is None:
            continue
        if not isinstance(value, str):
            return Outcome.SUCCESS
        answer = value
    if answer in ("", "SUCCESS"):
        return Outcome.SUCCESS
    return Outcome.DROP if answer == "DROP" else Outcome.RETRY


class DeliveryBase:
    """What one-by-one (:class:`Delivery`) and bulk delivery
    (:class:`daca.runtime.bulkdelivery.BulkDelivery`) share: the subscription's route, its
    ``rawPayload`` setting, the inbound retry policy and timeout, the POST to the app and the
    dead-letter topic."""

    def __init__(
        self,
        spec: SubscriptionSpec,
        pubsub: PubSub,
        channel: AppChannel,
        *,
        retry: RetryPolicy | None,
        timeout: float | None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self.spec = spec
        self._metrics = metrics
        self._pubsub = pubsub
        self._channel = channel
        self._router = Router(spec)
        self._retry = retry
        self._timeout = timeout
        self._raw_setting = spec.metadata.get("rawPayload", "")

    def _raw_payload(self) -> bool:
        if not self._raw_setting:
            return False
        try:
            return parse_go_bool(self._raw_setting)
        except ValueError:
            raise EnvelopeError(
                f"subscription metadata rawPayload {self._raw_setting!r} is not a boolean"
            ) from None

    def _raw_envelope(self, message: Message) -> dict[str, Any]:
        """daprd's synthetic CloudEvent for a ``rawPayload`` message."""
        return raw_payload_envelope(
            message.data,
            topic=self.spec.topic,
            pubsub=self.spec.pubsubname,
            metadata=message.metadata,
        )

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[T]], failed: Callable[[T], bool]
    ) -> T:
        """``attempt``, again after each delay of the inbound retry policy while its result
        ``failed`` (no policy: once); the last result."""
        delays = retry_delays(self._retry) if self._retry else iter(())
        while True:
            result = await attempt()
            if not failed(result):
                return result
            delay = next(delays, None)
            if delay is None:
                return result
            await asyncio.sleep(delay)

    @contextlib.contextmanager
    def _consumer_span(
        self, route: str, traceparent: str | None, tracestate: str | None
    ) -> Iterator[tuple[Span, dict[str, str]]]:
        """The span of one POST to ``route`` and the trace headers the app gets."""
        attributes = {"messaging.destination.name": self.spec.topic, "dapr.route": route}
        with child_span(
            f"pubsub/{self.spec.topic}",
            traceparent,
            tracestate,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            fresh=False,
        ) as (span, trace_headers):
            yield span, trace_headers

    def _url(self, route: str) -> str:
        return self._channel.base_url + "/" + route.lstrip("/")

    def _limit(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self._timeout)

    async def _send(
        self, url: str, body: bytes, headers: dict[str, str], limit: aiohttp.ClientTimeout
    ) -> tuple[int, bytes]:
        """POST the event; a connection closed before any answer (a kept-alive connection the
        app closed as it was reused, as uvicorn does after its keep-alive timeout) is tried
        once more at once on a new connection, as Go's HTTP client does, instead of becoming
        a RETRY that waits for the broker's redelivery. (Go retries only what it knows was not
        written; an app that died mid-request gets the event once more here, which
        at-least-once delivery allows.)"""
        headers = self._channel.headers(headers)
        try:
            return await _post(self._channel.session, url, body, headers, limit)
        except _UNANSWERED as exc:
            logger.info("delivery to %s: connection closed unanswered (%r); once more", url, exc)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as fresh:
            return await _post(fresh, url, body, headers, limit)

    def _count(self, outcome: Outcome, started: float) -> None:
        """One event in ``dapr_component_pubsub_ingress_*``."""
        if self._metrics is not None:
            elapsed = (time.perf_counter() - started) * 1000
            name = self.spec.pubsubname
            self._metrics.ingress(name, self.spec.topic, outcome.value.lower(), elapsed)

    async def _dead_letter(self, message: Message, reason: str) -> None:
        topic = self.spec.dead_letter_topic
        if not topic:
            logger.warning("%s (topic %s); no dead-letter topic: dropped", reason, self.spec.topic)
            return
        await self._pubsub.publish(topic, message.data, message.metadata)
        logger.warning(
            "%s (topic %s); sent to dead-letter topic %s", reason, self.spec.topic, topic
        )


class Delivery(DeliveryBase):
    """Delivers one subscription's messages to the app one by one (the handler given to the
    backend)."""

    async def __call__(self, message: Message) -> None:
        message = Message(
            topic=message.topic,
            data=message.data,
            metadata={**message.metadata, "pubsubName": self.spec.pubsubname},
            id=message.id,
        )
        try:
            envelope, body = self._envelope(message)
        except EnvelopeError as exc:
            await self._dead_letter(message, f"unreadable event: {exc}")
            return
        if has_expired(envelope):
            await self._dead_letter(message, f"event {envelope.get('id')} expired")
            return
        try:
            route = self._router.route(envelope)
        except MatchError:  # daprd: to the dead-letter topic, else an error the broker retries
            if not self.spec.dead_letter_topic:
                raise
            reason = f"event {envelope.get('id')}: no route could be chosen"
            await self._dead_letter(message, reason)
            return
        if route is None:
            await self._dead_letter(message, f"event {envelope.get('id')} matches no route")
            return
        try:
            delivery_headers(message.metadata, envelope)
        except UndeliverableError as exc:  # daprd: every attempt fails, then the dead letter
            logger.error(
                "event %s on %s cannot be delivered: %s", envelope.get("id"), self.spec.topic, exc
            )
            await self._dead_letter(message, f"event {envelope.get('id')} is undeliverable")
            return
        outcome = await self._deliver(route, body, envelope, message.metadata)
        await self._settle(message, envelope, outcome)

    def _envelope(self, message: Message) -> tuple[dict[str, Any], bytes]:
        """The event and the bytes sent for it; only the subscription's ``rawPayload`` counts."""
        if self._raw_payload():
            envelope = self._raw_envelope(message)
            return envelope, encode(envelope)
        return read_envelope(message.data), message.data

    async def _settle(self, message: Message, envelope: dict[str, Any], outcome: Outcome) -> None:
        event_id = envelope.get("id")
        if outcome is Outcome.DROP:
            await self._dead_letter(message, f"the app dropped event {event_id}")
        elif outcome is Outcome.RETRY:
            if not self.spec.dead_letter_topic:
                raise DeliveryFailedError(
                    f"event {event_id} on {self.spec.topic} failed; left with the broker"
                )
            await self._dead_letter(message, f"event {event_id} failed after retries")

    async def _deliver(
        self, route: str, body: bytes, envelope: Mapping[str, Any], metadata: Mapping[str, str]
    ) -> Outcome:
        return await self._with_retries(
            lambda: self._post(route, body, envelope, metadata),
            lambda outcome: outcome is Outcome.RETRY,
        )

    async def _post(
        self, route: str, body: bytes, envelope: Mapping[str, Any], metadata: Mapping[str, str]
    ) -> Outcome:
        headers = {
            **delivery_headers(metadata, envelope),
            "content-type": CLOUDEVENTS_CONTENT_TYPE,
        }
        url = self._url(route)
        with self._consumer_span(
            route, headers.pop("traceparent", None), headers.pop("tracestate", None)
        ) as (span, trace_headers):
            headers.update(trace_headers)
            started = time.perf_counter()
            try:
                status, content = await self._send(url, body, headers, self._limit())
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("delivering event %s to %s failed: %r", envelope.get("id"), url, exc)
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                self._count(Outcome.RETRY, started)
                return Outcome.RETRY
            outcome = read_outcome(status, content)
            span.set_attribute("dapr.outcome", outcome.value)
            self._count(outcome, started)
        if outcome is not Outcome.SUCCESS:
            logger.warning(
                "event %s on %s: app answered %d -> %s",
                envelope.get("id"),
                self.spec.topic,
                status,
                outcome.value,
            )
        return outcome
