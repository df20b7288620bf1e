"""``state.in-memory``: a dict behind an :class:`asyncio.Lock`, with Dapr's in-memory semantics.

ETags are fresh UUIDs on every write. TTLs are honoured lazily (an expired item is dropped when
it is next read or written) and reported as ``ttlExpireTime`` metadata, as daprd's store does.

The ETag rules of :mod:`daca.runtime.state.base` live here as :func:`validate_etag`, so the SQLite
backend applies exactly the same checks (the Redis backend mirrors them in Lua).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from daca.runtime.errors import ETagMismatchError
from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import (
    CAP_ACTOR,
    Concurrency,
    DeleteRequest,
    Operation,
    SetRequest,
    StateItem,
    StateStore,
)

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class _Entry:
    value: bytes
    etag: str
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class MemoryStateStore(StateStore):
    """Items in a dict; every operation holds one lock, so transactions are trivially atomic."""

    def __init__(self, *, actor_state_store: bool = False) -> None:
        self._items: dict[str, _Entry] = {}
        self._lock = asyncio.Lock()
        self._started = False
        if actor_state_store:
            self.capabilities = StateStore.capabilities | {CAP_ACTOR}

    @classmethod
    def from_component(cls, spec: ComponentSpec) -> MemoryStateStore:
        return cls(actor_state_store=spec.get_bool("actorStateStore"))

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._started = False

    async def get(self, key: str) -> StateItem | None:
        self._check_started()
        async with self._lock:
            entry = self._live(key, datetime.now(UTC))
        if entry is None:
            return None
        return StateItem(key, entry.value, entry.etag, ttl_metadata(entry.expires_at))

    async def set(self, request: SetRequest) -> None:
        await self.transact([request])

    async def delete(self, request: DeleteRequest) -> None:
        await self.transact([request])

    async def transact(self, operations: Sequence[Operation]) -> None:
        self._check_started()
        async with self._lock:
            now = datetime.now(UTC)
            for operation in operations:
                entry = self._live(operation.key, now)
                validate_etag(operation.key, None if entry is None else entry.etag, operation)
            for operation in operations:
                self._apply(operation, now)

    def _apply(self, operation: Operation, now: datetime) -> None:
        if isinstance(operation, DeleteRequest):
            self._items.pop(operation.key, None)
            return
        expires_at = expiry_for(operation.ttl_seconds, now)
        self._items[operation.key] = _Entry(operation.value, new_etag(), expires_at)

    def _live(self, key: str, now: datetime) -> _Entry | None:
        """The unexpired entry for ``key``; an expired one is purged on the way."""
        entry = self._items.get(key)
        if entry is not None and entry.expired(now):
            del self._items[key]
            return None
        return entry

    def _check_started(self) -> None:
        if not self._started:
            raise RuntimeError("MemoryStateStore used before start()")
