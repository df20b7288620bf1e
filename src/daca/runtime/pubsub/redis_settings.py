"""The metadata of a ``pubsub.redis`` component, parsed as daprd's Redis component reads it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daca.runtime.durations import parse_duration
from daca.runtime.pubsub.workers import DEFAULT_CONCURRENCY
from daca.runtime.redisconn import RedisConnection
from daca.runtime.resources import ComponentSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RedisPubSubSettings:
    """The component metadata, parsed; durations in seconds (a bare number is milliseconds).

    ``redisHost`` (required, ``host:port``), ``redisPassword``, ``redisUsername``, ``redisDB``,
    ``enableTLS``, ``consumerID``, ``queueDepth`` (100), ``concurrency`` (10; used when the
    subscriber asks for 0 or less), ``processingTimeout`` (60s), ``redeliverInterval`` (15s),
    ``readTimeout`` (the XREADGROUP BLOCK, 2s), ``maxLenApprox``. Other daprd fields
    (``redisType``, ``streamTTL``, pool tuning) are ignored.
    """

    connection: RedisConnection
    consumer_id: str = ""  # empty: the subscriber's group (the app-id)
    queue_depth: int = 100
    concurrency: int = DEFAULT_CONCURRENCY
    processing_timeout: float = 60.0
    redeliver_interval: float = 15.0
    read_timeout: float = 2.0
    max_len_approx: int | None = None

    @classmethod
    def from_spec(cls, spec: ComponentSpec) -> RedisPubSubSettings:
        max_len = spec.get_int("maxLenApprox", 0)
        settings = cls(
            connection=RedisConnection.from_spec(spec),
            consumer_id=spec.get("consumerID"),
            queue_depth=_positive(spec, "queueDepth", 100),
            concurrency=_positive(spec, "concurrency", DEFAULT_CONCURRENCY),
            processing_timeout=_duration(spec, "processingTimeout", 60.0),
            redeliver_interval=_duration(spec, "redeliverInterval", 15.0),
            read_timeout=_duration(spec, "readTimeout", 2.0),
            max_len_approx=max_len if max_len > 0 else None,
        )
        interval = spec.get("redeliverInterval").strip()
        if interval and not interval.isdigit():
            logger.warning(
                "%s: pubsub %r: redeliverInterval %r is honoured here, but daprd 1.18 "
                "(components-contrib 1.18) ignores a duration string there and reclaims every "
                "15s; write it in milliseconds (%r) to get the same on both",
                spec.source,
                spec.name,
                interval,
                f"{settings.redeliver_interval * 1000:g}",
            )
        return settings

    @property
    def reclaim_enabled(self) -> bool:
        return self.processing_timeout > 0 and self.redeliver_interval > 0


def _positive(spec: ComponentSpec, field_name: str, default: int) -> int:
    value = spec.get_int(field_name, default)
    if value < 1:
        raise spec.error(field_name, f"must be at least 1, got {value}")
    return value


def _duration(spec: ComponentSpec, field_name: str, default: float) -> float:
    raw = spec.get(field_name)
    try:
        return parse_duration(raw, bare_unit=0.001) if raw else default
    except ValueError as exc:
        raise spec.error(field_name, str(exc)) from None
