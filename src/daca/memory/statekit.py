"""Reading memory-service records: a stored value that is not what its key holds is an error
naming the key. The guarded writes are ``daca.dapr.guarded``'s."""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from daca.dapr.models import StateEntry
from daca.memory.errors import CorruptRecordError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


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
