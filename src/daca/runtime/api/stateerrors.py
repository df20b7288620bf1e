"""The state API's errors as daprd words them: statuses, codes, messages and ``details``.

:func:`store_failure` is the one place a store's error gets its wire identity.
"""

from __future__ import annotations

from typing import Any

from daca.runtime.api.common import error_info, resource_info
from daca.runtime.errors import (
    DaprError,
    ETagInvalidError,
    ETagMismatchError,
    MalformedRequest,
    StateDeleteConflict,
    StateDeleteETagInvalid,
    StateDeleteFailed,
    StateSaveConflict,
    StateSaveETagInvalid,
    StateSaveFailed,
    StateStoreNotConfigured,
    StateStoreNotFound,
    StoreError,
)

_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_MISMATCH = "possible etag mismatch. error from state store"
_INVALID = "invalid etag value"


def store_missing(name: str, app_id: str, *, configured: bool) -> DaprError:
    """No state store ``name``: none configured at all (500), or not this one (400)."""
    if not configured:
        info = error_info("DAPR_STATE_NOT_CONFIGURED", {"appID": app_id})
        return StateStoreNotConfigured(f"state store {name} is not configured", details=[info])
    info = error_info("DAPR_STATE_NOT_FOUND", {"appID": app_id})
    return StateStoreNotFound(f"state store {name} is not found", details=[info])


def illegal_key(store: str, key: str, field: str) -> DaprError:
    """daprd's answer to a key with ``||`` (``field`` is empty inside a transaction, as there)."""
    message = (
        f"api error: code = InvalidArgument desc = input key/keyPrefix '{key}' can't contain '||'"
    )
    violation = {"field": field, "description": message} if field else {"description": message}
    details: list[dict[str, Any]] = [
        {"@type": _BAD_REQUEST, "field_violations": [violation]},
        resource_info(store, "state", ""),
        error_info("DAPR_STATE_ILLEGAL_KEY", None),
    ]
    return MalformedRequest(message, details=details)


def store_error_text(exc: StoreError) -> str:
    """A store's error as daprd words it: an ETag error behind its prefix."""
    if isinstance(exc, ETagMismatchError):
        prefix = _MISMATCH
    elif isinstance(exc, ETagInvalidError):
        prefix = _INVALID
    else:
        return str(exc)
    return f"{prefix}: {exc}" if str(exc) else prefix


#: The operations whose ETag errors have wire identities of their own (daprd's
#: ``stateErrorResponse``): (a mismatch, an invalid ETag). Elsewhere (a get, a transaction) every
#: store error is the operation's 500, a mismatch included.
_ETAG_ANSWERS: dict[type[DaprError], tuple[type[DaprError], type[DaprError]]] = {
    StateSaveFailed: (StateSaveConflict, StateSaveETagInvalid),
    StateDeleteFailed: (StateDeleteConflict, StateDeleteETagInvalid),
}


def store_failure(failed: type[DaprError], exc: StoreError, prefix: str = "") -> DaprError:
    """A store's error ``exc`` as the operation whose failure is ``failed`` answers it: daprd's
    message (``prefix``, then the store's words) under the identity this kind of error has
    there."""
    mismatch, invalid = _ETAG_ANSWERS.get(failed, (failed, failed))
    if isinstance(exc, ETagMismatchError):
        failed = mismatch
    elif isinstance(exc, ETagInvalidError):
        failed = invalid
    return failed(f"{prefix}{store_error_text(exc)}")


def bulk_error(errors: list[StoreError]) -> StoreError:
    """What daprd's bulk save (the items of a multi-item save, in parallel) reports: when every
    failure is an ETag error, all of them behind one more prefix; else the first ETag error; else
    all of them."""
    etag_errors = [e for e in errors if isinstance(e, ETagMismatchError | ETagInvalidError)]
    joined = "\n".join(store_error_text(e) for e in errors)
    if len(etag_errors) == len(errors):
        if any(isinstance(e, ETagInvalidError) for e in errors):
            return ETagInvalidError(joined)
        return ETagMismatchError(joined)
    return etag_errors[0] if etag_errors else StoreError(joined)
