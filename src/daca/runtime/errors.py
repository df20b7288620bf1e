"""Errors the runtime raises, each carrying the HTTP status and Dapr ``errorCode`` it renders as.

    DaprError                       (status, error_code, message)
    ├── ComponentError              a component could not be loaded or started (start-up only)
    ├── StoreError                  a backend failed (maps to ERR_STATE_* / ERR_PUBSUB_*)
    │   ├── ETagMismatchError       the ETag did not match, or first-write found an existing key
    │   └── ETagInvalidError        the ETag is not in the backend's format
    └── ...                         HTTP-layer errors are plain DaprError instances

Backends raise ``StoreError`` subclasses without HTTP details; the HTTP layer decides the wire
identity (a mismatch is 409 on save and delete, but 500 ERR_STATE_TRANSACTION in a transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class DaprError(Exception):
    """An error answered as ``{"errorCode": ..., "message": ...}`` with ``status``.

    ``details`` are the ``google.rpc`` detail objects daprd adds to some errors (rendered as a
    ``details`` array when present).
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.details = list(details)


class ComponentError(Exception):
    """A resource file, component or field is wrong, or a backend is unreachable at start-up.

    The message names the file, the component and the field, so start-up can stop with it.
    """


class StoreError(Exception):
    """A state or pub/sub backend failed."""


class ETagMismatchError(StoreError):
    """The given ETag does not match the stored one (or first-write found an existing key)."""


class ETagInvalidError(StoreError):
    """The given ETag is not valid for this backend (e.g. not an integer on Redis)."""
