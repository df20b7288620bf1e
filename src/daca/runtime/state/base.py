"""The state store contract every backend implements.

Keys reach a backend already prefixed by the runtime (``<app-id>||<key>``, see ``keyPrefix``).
Values are the raw JSON bytes the app sent; a backend stores and returns them unchanged.

Concurrency semantics are the same on every backend (Dapr's in-memory store's, the cleanest):

- no ETag and no concurrency option, or ``last-write``: the write wins;
- an ETag: the write succeeds only if the key exists and its ETag matches, else
  :class:`~daca.runtime.errors.ETagMismatchError`;
- ``first-write`` with no ETag: succeeds only if the key does not exist yet, else mismatch;
- an ETag not in the backend's format (Redis, on a write: an integer) raises
  :class:`~daca.runtime.errors.ETagInvalidError`.

A mismatch's message is the backend's daprd counterpart's explanation (possibly empty).

``transact`` applies every operation or none.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Concurrency = Literal["first-write", "last-write"]

#: Capability names as daprd reports them in ``GET /v1.0/metadata``.
CAP_ETAG = "ETAG"
CAP_TRANSACTIONAL = "TRANSACTIONAL"
CAP_TTL = "TTL"
CAP_ACTOR = "ACTOR"


@dataclass(frozen=True, slots=True)
class StateItem:
    """A stored value: ``value`` is the JSON text saved by the app."""

    key: str
    value: bytes
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SetRequest:
    key: str
    value: bytes
    etag: str | None = None
    concurrency: Concurrency | None = None
    ttl_seconds: int | None = None  # None: no TTL; <= 0: remove any TTL


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    key: str
    etag: str | None = None
    concurrency: Concurrency | None = None


Operation = SetRequest | DeleteRequest


class StateStore(abc.ABC):
    """An async key/value store with ETags, TTL and atomic multi-key transactions.

    Lifecycle: ``await start()`` before use (it connects and fails loudly with
    :class:`~daca.runtime.errors.ComponentError` if the backend is unreachable), ``await close()``
    after. Methods called before ``start`` raise ``RuntimeError``.
    """

    #: Capabilities reported in the metadata API.
    capabilities: frozenset[str] = frozenset({CAP_ETAG, CAP_TRANSACTIONAL, CAP_TTL})

    #: How daprd's store of this type writes a value: with Go's ``encoding/json`` (``"std"``:
    #: object members sorted; ``<``, ``>``, ``&``, U+2028 and U+2029 escaped) or, as its Redis
    #: store, with jsoniter's fastest configuration (``"fastest"``: members kept, none escaped).
    value_encoding: ClassVar[Literal["std", "fastest"]] = "std"

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def get(self, key: str) -> StateItem | None:
        """The item, or ``None`` when the key is missing or expired."""

    @abc.abstractmethod
    async def set(self, request: SetRequest) -> None:
        """Write one item, honouring ``etag``, ``concurrency`` and ``ttl_seconds``."""

    @abc.abstractmethod
    async def delete(self, request: DeleteRequest) -> None:
        """Delete one item; deleting a missing key without an ETag succeeds."""

    @abc.abstractmethod
    async def transact(self, operations: Sequence[Operation]) -> None:
        """Apply every operation atomically: on any failure nothing is applied."""

    async def bulk_get(self, keys: Sequence[str]) -> list[StateItem | None]:
        """Items in key order (``None`` for missing keys)."""
        return [await self.get(key) for key in keys]

    async def bulk_set(self, requests: Sequence[SetRequest]) -> list[BaseException | None]:
        """Write each item on its own (as daprd's ``BulkSet``: one failing item does not stop
        the others); for each, its error or ``None``."""
        return await asyncio.gather(*map(self.set, requests), return_exceptions=True)

    @abc.abstractmethod
    def parse_ttl(self, raw: str) -> int | None:
        """A request's ``ttlInSeconds`` metadata as this store reads it (``None``: none given).

        A malformed value raises :class:`~daca.runtime.errors.StoreError` with the text daprd's
        store of the same type answers (each parses it its own way).
        """
