"""Subscriptions and delivery of events to the app, read the way daprd reads them.

For each subscription the runtime consumes the topic from its pub/sub backend and, per message:

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
import enum
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from daca.runtime.cel import compile_match
from daca.runtime.cloudevents import (
    CLOUDEVENTS_CONTENT_TYPE,
    EMPTY_TRACEPARENT,
    EnvelopeError,
    go_json,
    go_json_value,
    has_expired,
    parse_go_bool,
    raw_payload_envelope,
    read_envelope,
    w3c_traceparent,
)
from daca.runtime.pubsub.base import Message, PubSub
from daca.runtime.resiliency import retry_delays
from daca.runtime.resources import RetryPolicy, RouteRule, SubscriptionSpec

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class UndeliverableError(Exception):
    """The event cannot be sent to the app at all, however often it is tried."""


class DeliveryFailedError(Exception):
    """Retries ran out and there is no dead-letter topic: the broker keeps the message."""


@dataclass(frozen=True, slots=True)
class AppChannel:
    """How the sidecar reaches its app."""

    base_url: str
    session: aiohttp.ClientSession
    api_token: str | None = None

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.api_token:
            headers["dapr-api-token"] = self.api_token
        return headers


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
        body = go_json_value(content)
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


#: Message metadata that never becomes a header of the delivery (daprd's
#: ``InternalMetadataToHTTPHeader``): trace context is written separately, and hop-by-hop headers.
_NOT_HEADERS = frozenset(
    {
        "traceparent",
        "tracestate",
        "grpc-trace-bin",
        "dapr-app-id",
        "content-type",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def delivery_headers(metadata: Mapping[str, str], envelope: Mapping[str, Any]) -> dict[str, str]:
    """The headers daprd sends with an event besides its content type.

    Every message metadata entry (``pubsubName`` among them) becomes a header, except trace
    context, ``Content-*`` and hop-by-hop ones (and those a ``Connection`` entry names);
    ``grpc-*`` ones are renamed ``dapr-grpc-*``. ``traceparent`` is the metadata's, else the
    event's (``traceparent``, else ``traceid``) as daprd rewrites it, else an empty span's.
    A name that is no HTTP token, or a value with control characters, raises
    :class:`UndeliverableError`: daprd's HTTP client fails every delivery of such an event.
    """
    nominated = {
        name.strip().lower()
        for key, value in metadata.items()
        if key.lower() == "connection"
        for name in value.split(",")
    }
    headers: dict[str, str] = {}
    for key, value in metadata.items():
        name = key.lower()
        if name in _NOT_HEADERS or name in nominated or name.endswith("-bin"):
            continue
        if name.startswith("grpc-"):
            key = "dapr-" + name
        elif name in (":method", ":scheme", ":path", ":authority"):
            key = "dapr-" + name[1:]
        if not _TOKEN.fullmatch(key):
            raise UndeliverableError(f"metadata {key!r} is not a valid HTTP header name")
        if _CONTROL.search(value):
            raise UndeliverableError(f"metadata {key!r} is not a valid HTTP header value")
        headers[key] = value
    lowered = {key.lower(): value for key, value in metadata.items()}
    if lowered.get("traceparent"):
        headers["traceparent"] = lowered["traceparent"]
        if lowered.get("tracestate"):
            headers["tracestate"] = lowered["tracestate"]
    else:
        trace = envelope.get("traceparent")
        trace = envelope.get("traceid") if trace is None else trace
        headers["traceparent"] = w3c_traceparent(trace) or EMPTY_TRACEPARENT
    return headers


class Router:
    """Chooses the route of an event from a subscription's rules and default."""

    def __init__(self, spec: SubscriptionSpec) -> None:
        self._rules: list[tuple[Callable[[Mapping[str, Any]], bool], str]] = [
            (compile_match(rule.match), rule.path) for rule in spec.rules
        ]
        self._default = spec.default_route

    def route(self, envelope: Mapping[str, Any]) -> str | None:
        for matches, path in self._rules:
            if matches(envelope):
                return path
        return self._default


class Delivery:
    """Delivers one subscription's messages to the app (the handler given to the backend)."""

    def __init__(
        self,
        spec: SubscriptionSpec,
        pubsub: PubSub,
        channel: AppChannel,
        *,
        retry: RetryPolicy | None,
        timeout: float | None,
    ) -> None:
        self.spec = spec
        self._pubsub = pubsub
        self._channel = channel
        self._router = Router(spec)
        self._retry = retry
        self._timeout = timeout
        self._raw_setting = spec.metadata.get("rawPayload", "")

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
        route = self._router.route(envelope)
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
            envelope = raw_payload_envelope(
                message.data,
                topic=self.spec.topic,
                pubsub=self.spec.pubsubname,
                metadata=message.metadata,
            )
            return envelope, go_json(envelope)
        return read_envelope(message.data), message.data

    def _raw_payload(self) -> bool:
        if not self._raw_setting:
            return False
        try:
            return parse_go_bool(self._raw_setting)
        except ValueError:
            raise EnvelopeError(
                f"subscription metadata rawPayload {self._raw_setting!r} is not a boolean"
            ) from None

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
        delays = retry_delays(self._retry) if self._retry else iter(())
        while True:
            outcome = await self._post(route, body, envelope, metadata)
            if outcome is not Outcome.RETRY:
                return outcome
            delay = next(delays, None)
            if delay is None:
                return outcome
            await asyncio.sleep(delay)

    async def _post(
        self, route: str, body: bytes, envelope: Mapping[str, Any], metadata: Mapping[str, str]
    ) -> Outcome:
        headers = {
            **delivery_headers(metadata, envelope),
            "content-type": CLOUDEVENTS_CONTENT_TYPE,
        }
        url = self._channel.base_url + "/" + route.lstrip("/")
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with self._channel.session.post(
                url, data=body, headers=self._channel.headers(headers), timeout=timeout
            ) as response:
                status, content = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("delivering event %s to %s failed: %r", envelope.get("id"), url, exc)
            return Outcome.RETRY
        outcome = read_outcome(status, content)
        if outcome is not Outcome.SUCCESS:
            logger.warning(
                "event %s on %s: app answered %d -> %s",
                envelope.get("id"),
                self.spec.topic,
                status,
                outcome.value,
            )
        return outcome

    async def _dead_letter(self, message: Message, reason: str) -> None:
        topic = self.spec.dead_letter_topic
        if not topic:
            logger.warning("%s (topic %s); no dead-letter topic: dropped", reason, self.spec.topic)
            return
        await self._pubsub.publish(topic, message.data, message.metadata)
        logger.warning(
            "%s (topic %s); sent to dead-letter topic %s", reason, self.spec.topic, topic
        )


def parse_programmatic(entries: object) -> list[SubscriptionSpec]:
    """``GET /dapr/subscribe`` entries as subscriptions; bad entries are logged and skipped."""
    if not isinstance(entries, list):
        logger.error("GET /dapr/subscribe did not answer a JSON array; no subscriptions taken")
        return []
    specs = [_programmatic_entry(entry) for entry in entries]
    return [spec for spec in specs if spec is not None]


def _programmatic_entry(entry: object) -> SubscriptionSpec | None:
    if not isinstance(entry, dict) or not entry.get("pubsubname") or not entry.get("topic"):
        logger.warning("GET /dapr/subscribe entry without pubsubname/topic skipped: %r", entry)
        return None
    routes = entry.get("routes") or {}
    rules = tuple(
        RouteRule(match=str(rule.get("match", "")), path=str(rule["path"]))
        for rule in routes.get("rules") or []
        if isinstance(rule, dict) and rule.get("path")
    )
    default = routes.get("default") or entry.get("route") or None
    if not rules and not default:
        logger.warning("subscription to %s has no route; skipped", entry["topic"])
        return None
    spec = SubscriptionSpec(
        pubsubname=str(entry["pubsubname"]),
        topic=str(entry["topic"]),
        rules=rules,
        default_route=default,
        dead_letter_topic=entry.get("deadLetterTopic") or None,
        metadata={str(k): str(v) for k, v in (entry.get("metadata") or {}).items()},
        type="PROGRAMMATIC",
    )
    try:
        Router(spec)
    except ValueError as exc:
        logger.error("subscription to %s skipped: %s", spec.topic, exc)
        return None
    return spec


def merge_subscriptions(
    declarative: list[SubscriptionSpec], programmatic: list[SubscriptionSpec]
) -> list[SubscriptionSpec]:
    """One subscription per (pubsub, topic); a programmatic one replaces a declarative one."""
    merged = {(spec.pubsubname, spec.topic): spec for spec in declarative}
    for spec in programmatic:
        key = (spec.pubsubname, spec.topic)
        if key in merged and merged[key].type == "DECLARATIVE":
            logger.warning("programmatic subscription to %s/%s replaces the declarative one", *key)
        merged[key] = spec
    return list(merged.values())
