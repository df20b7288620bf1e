"""The concurrency and TTL rules of the state contract, shared by the backends.

:func:`validate_etag` is the one statement of the ETag rules in :mod:`daca.runtime.state.base`
(the Redis backend mirrors it in Lua); the TTL helpers report ``ttlExpireTime`` as daprd does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from daca.runtime.errors import ETagMismatchError
from daca.runtime.state.base import Concurrency, Operation

#: The metadata key daprd uses to report when an item expires.
TTL_EXPIRE_TIME = "ttlExpireTime"


def new_etag() -> str:
    return str(uuid.uuid4())


def given_etag(operation: Operation) -> str | None:
    """The operation's ETag, with an empty string meaning "none" (as in daprd)."""
    return operation.etag or None


def validate_etag(key: str, current: str | None, operation: Operation) -> None:
    """Raise :class:`ETagMismatchError` unless ``operation`` may replace ``current``.

    ``current`` is the stored ETag, or ``None`` when the key is missing or expired.
    """
    etag = given_etag(operation)
    if etag is not None and etag != current:
        problem = "does not exist" if current is None else "has a different ETag"
        raise ETagMismatchError(f"possible etag mismatch: key {key!r} {problem}")
    if etag is None and _is_first_write(operation.concurrency) and current is not None:
        raise ETagMismatchError(f"first-write: key {key!r} already exists and no ETag was given")


def _is_first_write(concurrency: Concurrency | None) -> bool:
    return concurrency == "first-write"


def rfc3339(moment: datetime) -> str:
    """``moment`` as daprd writes ``ttlExpireTime``: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ttl_metadata(expires_at: datetime | None) -> dict[str, str]:
    return {} if expires_at is None else {TTL_EXPIRE_TIME: rfc3339(expires_at)}


def expiry_for(ttl_seconds: int | None, now: datetime) -> datetime | None:
    """When an item written ``now`` with ``ttl_seconds`` expires (``None``: never)."""
    if ttl_seconds is None or ttl_seconds <= 0:
        return None
    return now + timedelta(seconds=ttl_seconds)
