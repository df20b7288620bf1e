"""Reading memory-service records: a stored value that is not what its key holds is an error
naming the key. The guarded writes are ``daca.dapr.guarded``'s.

A read is split in two: which keys it needs, and what it computes from the entries read
(``Entries``, by key). So one bulk read (``read_many``) can serve several reads at once, as the
context route's do, and each read alone is the same pieces around a bulk read of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from daca.dapr.client import DaprClient
from daca.dapr.models import StateEntry
from daca.memory.errors import CorruptRecordError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
#: Entries read, by key (``None`` for a missing key).
Entries = Mapping[str, StateEntry | None]


def parse(model: type[M], entry: StateEntry | None) -> M | None:
    """The entry's value as ``model``, or ``None`` for a missing key.

    A value that is not a ``model`` raises ``CorruptRecordError`` naming the key.
    """
    if entry is None:
        return None
    try:
        return model.model_validate(entry.value)
    except (ValidationError, RecursionError):
        logger.error("stored record %r is not a valid %s", entry.key, model.__name__)
        raise CorruptRecordError(entry.key, model.__name__) from None


async def read_many(
    client: DaprClient, store: str, keys: Iterable[str]
) -> dict[str, StateEntry | None]:
    """The entries of ``keys``, by key, from one bulk read: each key is asked for once, and no
    call is made when no key is wanted."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    return dict(zip(wanted, await client.bulk_get_state(store, wanted), strict=True))
