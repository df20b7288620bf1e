"""Reading memory-service records: a stored value that is not what its key holds is an error
naming the key. The guarded writes are ``daca.dapr.guarded``'s.

A read is split in two: which keys it needs, and what it computes from the entries read
(``Entries``, by key). So one bulk read (``read_many``) can serve several reads at once, as the
context route's do, and each read alone is the same pieces around a bulk read of its own.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from daca.dapr.client import DaprClient
from daca.dapr.models import StateEntry
from daca.memory.errors import CorruptRecordError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
#: Entries read, by key (``None`` for a missing key).
Entries = Mapping[str, StateEntry | None]


class _Parsed:
    """The last parse of recently read records, by model and key, least recently used first
    out past ``capacity``. A hit needs the value read to equal the one parsed (compared as
    parsed JSON, a tenth of the cost of validating it again), so a changed, deleted or
    recreated record is simply parsed anew."""

    def __init__(self, capacity: int) -> None:
        self._parsed: OrderedDict[tuple[type[BaseModel], str], tuple[Any, BaseModel]]
        self._parsed = OrderedDict()
        self._capacity = capacity

    def get(self, model: type[M], entry: StateEntry) -> M | None:
        found = self._parsed.get((model, entry.key))
        if found is None or found[0] != entry.value:
            return None
        self._parsed.move_to_end((model, entry.key))
        return cast(M, found[1])

    def put(self, model: type[BaseModel], entry: StateEntry, parsed: BaseModel) -> None:
        self._parsed[(model, entry.key)] = (entry.value, parsed)
        self._parsed.move_to_end((model, entry.key))
        while len(self._parsed) > self._capacity:
            self._parsed.popitem(last=False)

    def forget(self, keys: Iterable[str]) -> None:
        gone = set(keys)
        for cached in [cached for cached in self._parsed if cached[1] in gone]:
            del self._parsed[cached]


#: Frozen records are parsed once while they stay unchanged: a user's log pages, read by every
#: context read and search, change only while they are the newest. 128 pages of 100 turns take
#: tens of megabytes at most.
_PARSED = _Parsed(capacity=128)


def parse(model: type[M], entry: StateEntry | None) -> M | None:
    """The entry's value as ``model``, or ``None`` for a missing key.

    A value that is not a ``model`` raises ``CorruptRecordError`` naming the key. The parse of
    a frozen model is shared by the reads that find the same value (``_Parsed``).
    """
    if entry is None:
        return None
    shared = model.model_config.get("frozen", False)
    if shared and (parsed := _PARSED.get(model, entry)) is not None:
        return parsed
    try:
        parsed = model.model_validate(entry.value)
    except (ValidationError, RecursionError):
        logger.error("stored record %r is not a valid %s", entry.key, model.__name__)
        raise CorruptRecordError(entry.key, model.__name__) from None
    if shared:
        _PARSED.put(model, entry, parsed)
    return parsed


class _Sealed:
    """Entries that cannot change while their generation lasts, by key, least recently used
    first out past ``capacity``: a full page of a user's log never changes while the log does
    (``daca.memory.userlog``), so a read takes it from here instead of asking the store."""

    def __init__(self, capacity: int) -> None:
        self._entries: OrderedDict[str, tuple[str, StateEntry]] = OrderedDict()
        self._capacity = capacity

    def get(self, key: str, generation: str) -> StateEntry | None:
        found = self._entries.get(key)
        if found is None or found[0] != generation:
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, entry: StateEntry, generation: str) -> None:
        self._entries[entry.key] = (generation, entry)
        self._entries.move_to_end(entry.key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)


#: As many full log pages as ``_PARSED`` holds parses: the searched tails (ten pages each) of
#: about a dozen users.
_SEALED = _Sealed(capacity=128)


def sealed(key: str, generation: str) -> StateEntry | None:
    """The entry of ``key`` as read while ``generation`` lasted, if remembered (``seal``)."""
    return _SEALED.get(key, generation)


def seal(entry: StateEntry, generation: str) -> None:
    """Remember ``entry``: its value cannot change while ``generation`` lasts."""
    _SEALED.put(entry, generation)


def forget_cached(keys: Iterable[str]) -> None:
    """Drop the shared parses and the sealed entries of ``keys`` (their records were deleted)."""
    keys = list(keys)
    _PARSED.forget(keys)
    _SEALED.forget(keys)


class ReadHints:
    """The keys each recent read of a kind needed after its first bulk read (the pages its
    heads pointed to), by what it read (a user and a session, say), least recently used first
    out past ``capacity``: the next such read asks for them with the heads, so it needs no
    second read unless the heads moved. Keys only, no contents."""

    def __init__(self, capacity: int = 4096) -> None:
        self._keys: OrderedDict[tuple[str, ...], list[str]] = OrderedDict()
        self._capacity = capacity

    def get(self, *subject: str) -> list[str]:
        return self._keys.get(subject, [])

    def put(self, keys: list[str], *subject: str) -> None:
        self._keys[subject] = keys
        self._keys.move_to_end(subject)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)


async def read_many(
    client: DaprClient, store: str, keys: Iterable[str]
) -> dict[str, StateEntry | None]:
    """The entries of ``keys``, by key, from one bulk read: each key is asked for once, and no
    call is made when no key is wanted."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    return dict(zip(wanted, await client.bulk_get_state(store, wanted), strict=True))
