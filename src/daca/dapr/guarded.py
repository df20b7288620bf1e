"""ETag-guarded state writes that hold on every Dapr state store.

Why records are created before a transaction writes them: daprd's ``state.redis`` runs a
transaction as several scripts in MULTI/EXEC, and in a transaction an upsert without an ETag
overwrites an existing key even when it asks for first-write (the first-write flag is only
honoured by a plain save). So "create only if absent" cannot be part of a transaction there.
Instead, a record that is missing is first created on its own, with a first-write save of an
empty value (``create_missing``), and read again; every transaction then writes only records
it read, each guarded by the ETag it read (``guarded_upsert``). An ETag-guarded upsert is
checked by every store, in or out of a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from daca.dapr.client import DaprClient
from daca.dapr.errors import DaprAPIError, ETagMismatchError
from daca.dapr.models import StateEntry, StateOperation, StateWrite

logger = logging.getLogger(__name__)


#: A record's value: a model, or the JSON object it is stored as.
Value = BaseModel | dict[str, Any]


def guarded_write(
    key: str, value: Value, read: StateEntry | None, *, ttl: int | None = None
) -> StateWrite:
    """A save that succeeds only if ``key`` is unchanged since ``read``.

    With an ETag when the key was read, else first-write, so a key created meanwhile conflicts.
    ``ttl`` (seconds) has the store expire the record (Dapr's ``ttlInSeconds``). Only for plain
    saves: in a transaction use ``guarded_upsert``.
    """
    etag = read.etag if read is not None else None
    metadata = {"ttlInSeconds": str(ttl)} if ttl is not None else None
    return StateWrite(key=key, value=value, etag=etag, concurrency="first-write", metadata=metadata)


def guarded_upsert(
    key: str, value: Value, read: StateEntry | None, *, ttl: int | None = None
) -> StateOperation:
    """A transaction upsert of a record that exists, guarded by the ETag it was read with.

    A record that was not read (missing) is refused: create it first (``create_missing``).
    """
    if read is None or read.etag is None:
        raise ValueError(f"{key}: a transaction may only write a record read with its ETag")
    return StateOperation(operation="upsert", request=guarded_write(key, value, read, ttl=ttl))


async def create_missing(
    client: DaprClient,
    store: str,
    empty: Mapping[str, BaseModel],
    read: Mapping[str, StateEntry | None],
) -> bool:
    """Create each key of ``empty`` that ``read`` found missing, with its empty value.

    One save, each item first-write. Returns whether anything was missing (the caller then
    reads again). Losing the race to a concurrent creator is fine: the key exists either way.
    """
    missing = [key for key in empty if read.get(key) is None]
    if not missing:
        return False
    writes = [guarded_write(key, empty[key], None) for key in missing]
    try:
        await client.save_state(store, writes)
    except ETagMismatchError:
        logger.debug("records created concurrently: %s", missing)
    except DaprAPIError as exc:
        # daprd's Redis store reports a refused first-write as 500 ERR_STATE_SAVE.
        if exc.error_code != "ERR_STATE_SAVE":
            raise
        logger.debug("records created concurrently (%s): %s", exc.error_code, missing)
    return True


def outbox_projection(key: str, event: BaseModel) -> StateOperation:
    """The transaction operation that makes the sidecar publish ``event`` instead of storing it.

    With a state store configured for Dapr's transactional outbox (``outboxPublishPubsub`` and
    ``outboxPublishTopic``), every upsert of a transaction is published once the transaction
    commits; an upsert of the same key with ``outbox.projection`` is what is published for it
    (as JSON), and is not stored.
    """
    metadata: dict[str, Any] = {"outbox.projection": "true", "contentType": "application/json"}
    return StateOperation(
        operation="upsert", request=StateWrite(key=key, value=event, metadata=metadata)
    )
