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


def forget_parsed(keys: Iterable[str]) -> None:
    """Drop the shared parses of ``keys`` (their records were deleted)."""
    _PARSED.forget(keys)


async def read_many(
    client: DaprClient, store: str, keys: Iterable[str]
) -> dict[str, StateEntry | None]:
    """The entries of ``keys``, by key, from one bulk read: each key is asked for once, and no
    call is made when no key is wanted."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    return dict(zip(wanted, await client.bulk_get_state(store, wanted), strict=True))
