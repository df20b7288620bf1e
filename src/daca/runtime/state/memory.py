"""``state.in-memory``: a dict behind an :class:`asyncio.Lock`, with Dapr's in-memory semantics.

ETags are fresh UUIDs on every write. TTLs are honoured lazily (an expired item is dropped when
it is next read or written) and reported as ``ttlExpireTime`` metadata, as daprd's store does.

The ETag and TTL rules come from :mod:`daca.runtime.state.rules`, shared with the SQLite backend
(the Redis backend mirrors them in Lua).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import (
    DeleteRequest,
    Operation,
    SetRequest,
    StateItem,
    StateStore,
)
from daca.runtime.state.rules import (
    expiry_for,
    new_etag,
    parse_atoi_ttl,
    ttl_metadata,
    validate_etag,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Entry:
    value: bytes
    etag: str
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class MemoryStateStore(StateStore):
    """Items in a dict; every operation holds one lock, so transactions are trivially atomic."""

    def __init__(self) -> None:
        self._items: dict[str, _Entry] = {}
        self._lock = asyncio.Lock()
        self._started = False

    @classmethod
    def from_component(cls, spec: ComponentSpec, *, client: None = None) -> MemoryStateStore:
        """The store reads no metadata, and has no client to inject: it is its own dict."""
        return cls()

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

    def parse_ttl(self, raw: str) -> int | None:
        return parse_atoi_ttl(raw)

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
