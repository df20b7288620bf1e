"""Dapr's transactional outbox, laid out as daprd lays it out (``pkg/runtime/pubsub/outbox.go``).

A state store whose component sets ``outboxPublishPubsub`` and ``outboxPublishTopic`` publishes
the upserts of every transaction made on it, once the transaction has committed:

1. ``prepare``: for each upsert, a CloudEvent (id ``outbox-<uuid>``, ``source`` the app-id, the
   upsert's value as ``data``, or the value of an upsert of the same key whose metadata has
   ``outbox.projection: "true"``; projection upserts are not stored) is published to the internal
   topic ``<namespace><app-id><topic>outbox`` on ``outboxPubsub`` (default: the publish pubsub),
   and a marker ``outbox-<uuid>`` (value ``"0"``, no key prefix) joins the transaction.
2. The sidecar subscribes to its internal topics (consumer group: the app-id). For each message it
   waits until the marker is visible, publishes the event to ``outboxPublishTopic`` on
   ``outboxPublishPubsub`` and deletes the marker. A marker that never shows up (the transaction
   failed) is dropped after ``MARKER_WAIT`` when ``outboxDiscardWhenMissingState`` is true, else
   the message stays with the broker and is redelivered.

So an event is published if and only if its transaction committed, even when the sidecar dies
in between. Unlike daprd, which always sleeps one second before its first look at the marker,
daca looks at once and then backs off (the first look usually finds it: daca's transactions
are atomic), so an outbox event reaches subscribers in milliseconds instead of about a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daca.runtime.metrics import RuntimeMetrics
from daca.runtime.pubsub.base import Message, PubSub, Subscription
from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import DeleteRequest, SetRequest, StateStore

logger = logging.getLogger(__name__)

PROJECTION = "outbox.projection"
MARKER_PREFIX = "outbox-"
#: How long the internal subscriber looks for a transaction's marker (daprd: 10 s).
MARKER_WAIT = 10.0
_FIRST_BACKOFF = 0.02
_MAX_BACKOFF = 1.0


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """The outbox settings of one state store component."""

    store: str
    publish_pubsub: str
    publish_topic: str
    outbox_pubsub: str
    discard_when_missing_state: bool

    @classmethod
    def from_component(cls, spec: ComponentSpec) -> OutboxConfig | None:
        """The component's outbox, or ``None`` when it does not set one."""
        pubsub, topic = spec.get("outboxPublishPubsub"), spec.get("outboxPublishTopic")
        if not pubsub or not topic:
            return None
        return cls(
            store=spec.name,
            publish_pubsub=pubsub,
            publish_topic=topic,
            outbox_pubsub=spec.get("outboxPubsub") or pubsub,
            discard_when_missing_state=spec.get_bool("outboxDiscardWhenMissingState"),
        )


@dataclass(frozen=True, slots=True)
class OutboxUpsert:
    """One upsert of a transaction as the outbox sees it (the key as stored)."""

    key: str
    value: bytes  # the JSON text the app sent
    content_type: str | None
    projection: bool
    metadata: Mapping[str, str]


def internal_topic(namespace: str, app_id: str, topic: str) -> str:
    """daprd's name for the outbox's internal topic."""
    return f"{namespace}{app_id}{topic}outbox"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _data_fields(value: bytes, content_type: str | None) -> dict[str, Any]:
    """``data`` (and ``datacontenttype``) of the event for a stored value."""
    if content_type and content_type.lower() == "application/json":
        return {"data": json.loads(value), "datacontenttype": content_type}
    # daprd formats any other value with Go's %v; daca keeps the value's JSON text as a string.
    fields: dict[str, Any] = {"data": value.decode(errors="replace")}
    if content_type:
        fields["datacontenttype"] = content_type
    return fields


class Outbox:
    """The outboxes of one sidecar's state stores."""

    def __init__(
        self,
        app_id: str,
        configs: Sequence[OutboxConfig],
        pubsubs: Mapping[str, PubSub],
        stores: Mapping[str, StateStore],
        *,
        namespace: str = "default",
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._app_id = app_id
        self._configs = {config.store: config for config in configs}
        self._pubsubs = pubsubs
        self._stores = stores
        self._namespace = namespace
        self._subscriptions: list[Subscription] = []

    def enabled(self, store: str) -> bool:
        return store in self._configs

    async def prepare(
        self, store: str, upserts: Sequence[OutboxUpsert], trace_parent: str = ""
    ) -> tuple[set[str], list[SetRequest]]:
        """Publish the internal messages of a transaction's upserts.

        Returns the keys of the projection upserts (not to be stored) and the marker writes to
        add to the transaction.
        """
        config = self._configs[store]
        projections = {u.key: u for u in upserts if u.projection}
        markers: list[SetRequest] = []
        for upsert in upserts:
            if upsert.projection:
                continue
            marker = f"{MARKER_PREFIX}{uuid.uuid4()}"
            source = projections.get(upsert.key, upsert)
            event = self._event(marker, config, source, upsert.metadata, trace_parent)
            topic = internal_topic(self._namespace, self._app_id, config.publish_topic)
            await self._pubsubs[config.outbox_pubsub].publish(
                topic, json.dumps(event).encode(), None
            )
            markers.append(SetRequest(key=marker, value=b'"0"'))
        return set(projections), markers

    def _event(
        self,
        marker: str,
        config: OutboxConfig,
        source: OutboxUpsert,
        metadata: Mapping[str, str],
        trace_parent: str,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": marker,
            "source": self._app_id,
            "type": "com.dapr.event.sent",
            "specversion": "1.0",
            "pubsubname": config.outbox_pubsub,
            "topic": "",
            "time": _now(),
            "traceid": trace_parent,
            "traceparent": trace_parent,
            "tracestate": "",
            **_data_fields(source.value, source.content_type),
        }
        for name, value in metadata.items():  # the stored upsert's metadata, as daprd copies it
            if name not in ("data", "id"):
                event[name] = value
        return event

    async def start(self) -> None:
        """Subscribe to the internal topics (as the app-id's consumer group)."""
        for config in self._configs.values():
            pubsub = self._pubsubs.get(config.outbox_pubsub)
            if pubsub is None:
                logger.warning(
                    "outbox of %r: pubsub %r is not loaded", config.store, config.outbox_pubsub
                )
                continue
            topic = internal_topic(self._namespace, self._app_id, config.publish_topic)

            async def handle(message: Message, config: OutboxConfig = config) -> None:
                await self._forward(config, message)

            subscription = await pubsub.subscribe(topic, handle, group=self._app_id, concurrency=10)
            self._subscriptions.append(subscription)

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()

    async def _forward(self, config: OutboxConfig, message: Message) -> None:
        """Publish one committed event and delete its marker; raise to leave it pending."""
        event = json.loads(message.data)
        marker = str(event.get("id", ""))
        store = self._stores[config.store]
        if not await self._marker_visible(store, marker):
            if config.discard_when_missing_state:
                logger.error("outbox %s: no state for %s, discarding it", config.store, marker)
                return
            raise LookupError(f"outbox {config.store}: no state for {marker} yet")
        event["topic"], event["pubsubname"] = config.publish_topic, config.publish_pubsub
        started = time.perf_counter()
        await self._pubsubs[config.publish_pubsub].publish(
            config.publish_topic, json.dumps(event).encode(), None
        )
        if self._metrics is not None:
            elapsed = (time.perf_counter() - started) * 1000
            self._metrics.egress(config.publish_pubsub, config.publish_topic, True, elapsed)
        await store.transact([DeleteRequest(key=marker)])

    @staticmethod
    async def _marker_visible(store: StateStore, marker: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + MARKER_WAIT, _FIRST_BACKOFF
        while await store.get(marker) is None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)
        return True
