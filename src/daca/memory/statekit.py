"""Small helpers for building ETag-guarded state operations from read entries."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from daca.dapr.models import StateEntry, StateOperation, StateWrite

M = TypeVar("M", bound=BaseModel)


def guarded_write(key: str, value: BaseModel, read: StateEntry | None) -> StateWrite:
    """A write that succeeds only if ``key`` is unchanged since ``read``.

    With an ETag when the key was read, else first-write, so a key created meanwhile conflicts.
    """
    etag = read.etag if read is not None else None
    return StateWrite(key=key, value=value, etag=etag, concurrency="first-write")


def guarded_upsert(key: str, value: BaseModel, read: StateEntry | None) -> StateOperation:
    """``guarded_write`` as a transaction operation."""
    return StateOperation(operation="upsert", request=guarded_write(key, value, read))


def parse(model: type[M], entry: StateEntry | None) -> M | None:
    """The entry's value as ``model``, or ``None`` for a missing key."""
    return None if entry is None else model.model_validate(entry.value)
