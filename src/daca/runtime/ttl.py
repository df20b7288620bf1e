"""A message's time to live as daprd reads it (``TryGetTTL``), and an event's ``expiration``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from daca.runtime.durations import MAX_DURATION, go_duration

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def message_ttl(metadata: Mapping[str, str]) -> float | None:
    """The ``ttl``/``ttlInSeconds`` metadata in seconds, as daprd reads it (``TryGetTTL``).

    A Go duration (a negative one is 0), else a whole number of seconds above 0; anything else
    is no TTL at all (daprd ignores the error). Keys match in any case; ``ttl`` comes first.
    """
    lowered = {key.lower(): value for key, value in metadata.items()}
    raw = next((lowered[key] for key in ("ttl", "ttlinseconds") if key in lowered), "")
    if not raw:
        return None
    try:
        return min(max(go_duration(raw), 0.0), MAX_DURATION)
    except ValueError:
        pass
    if not re.fullmatch(r"[+-]?\d+", raw) or not 0 < int(raw) < 2**63:
        return None
    return min(float(int(raw)), MAX_DURATION)


def apply_ttl(envelope: dict[str, Any], metadata: Mapping[str, str]) -> None:
    """Add ``expiration`` for a TTL in ``metadata`` (``ApplyMetadata``; no backend has one)."""
    ttl = message_ttl(metadata)
    if ttl is not None:
        envelope["expiration"] = expiration(ttl)


def expiration(ttl_seconds: float) -> str:
    """The RFC 3339 time ``ttl_seconds`` from now, in whole seconds, UTC."""
    expires = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    return expires.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def has_expired(envelope: Mapping[str, Any]) -> bool:
    """Whether ``expiration`` (RFC 3339) is past; an unreadable one never expires, as in daprd."""
    raw = envelope.get("expiration")
    if not isinstance(raw, str) or not _RFC3339.fullmatch(raw):
        return False
    try:
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    return expires < datetime.now(UTC)
