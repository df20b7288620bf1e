"""The concurrency and TTL rules of the state contract, shared by the backends.

:func:`validate_etag` is the one statement of the ETag rules in :mod:`daca.runtime.state.base`
(the Redis backend mirrors it in Lua); the TTL helpers report ``ttlExpireTime`` as daprd does.
Error texts are daprd's: its in-memory store's for a mismatch, Go's ``strconv`` for a number.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from daca.runtime.errors import ETagMismatchError, StoreError
from daca.runtime.state.base import Concurrency, Operation

_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)
_CONCURRENCY = ("first-write", "last-write")
_CONSISTENCY = ("strong", "eventual")

#: The metadata key daprd uses to report when an item expires.
TTL_EXPIRE_TIME = "ttlExpireTime"


def new_etag() -> str:
    return str(uuid.uuid4())


def given_etag(operation: Operation) -> str | None:
    """The operation's ETag, with an empty string meaning "none" (as in daprd)."""
    return operation.etag or None


def validate_etag(
    key: str, current: str | None, operation: Operation, *, explain: bool = True
) -> None:
    """Raise :class:`ETagMismatchError` unless ``operation`` may replace ``current``.

    ``current`` is the stored ETag, or ``None`` when the key is missing or expired. The error
    says why in the words of daprd's in-memory store; with ``explain=False`` it says nothing
    more than "mismatch", as daprd's SQLite store.
    """
    etag = given_etag(operation)
    if etag is None:
        if _is_first_write(operation.concurrency) and current is not None:
            raise ETagMismatchError(_why(explain, "item already exists and no etag was passed"))
    elif current is None:
        raise ETagMismatchError(_why(explain, f"state not exist or expired for key={key}"))
    elif etag != current:
        why = f"state etag not match for key={key}: current={current}, expect={etag}"
        raise ETagMismatchError(_why(explain, why))


def _why(explain: bool, text: str) -> str:
    return text if explain else ""


def _is_first_write(concurrency: Concurrency | None) -> bool:
    return concurrency == "first-write"


def rfc3339(moment: datetime) -> str:
    """``moment`` as daprd writes ``ttlExpireTime``: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ttl_metadata(expires_at: datetime | None) -> dict[str, str]:
    return {} if expires_at is None else {TTL_EXPIRE_TIME: rfc3339(expires_at)}


def expiry_for(ttl_seconds: int | None, now: datetime) -> datetime | None:
    """When an item written ``now`` with ``ttl_seconds`` expires (``None``: never)."""
    if ttl_seconds is None or ttl_seconds <= 0:
        return None
    return now + timedelta(seconds=ttl_seconds)


def parse_go_int(text: str, function: str) -> int:
    """``text`` read as Go's ``strconv.Atoi`` / ``strconv.ParseInt(text, 10, 0)`` read it.

    Raises ``ValueError`` with Go's message (``function`` names it: ``Atoi`` or ``ParseInt``).
    """
    quoted = json.dumps(text, ensure_ascii=False)
    if not _GO_INT.fullmatch(text):
        raise ValueError(f"strconv.{function}: parsing {quoted}: invalid syntax")
    value = int(text)
    if value not in _INT64:
        raise ValueError(f"strconv.{function}: parsing {quoted}: value out of range")
    return value


def parse_atoi_ttl(raw: str) -> int | None:
    """``ttlInSeconds`` as daprd's in-memory store reads it: ``Atoi``; a negative TTL is none."""
    if raw == "":
        return None
    try:
        return max(parse_go_int(raw, "Atoi"), 0)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def check_options(concurrency: str, consistency: str) -> None:
    """daprd's check of a request's ``options`` (an empty string is the default)."""
    if consistency and consistency not in _CONSISTENCY:
        raise StoreError(f"unrecognized consistency model '{consistency}'")
    if concurrency and concurrency not in _CONCURRENCY:
        raise StoreError(f"unrecognized concurrency model '{concurrency}'")
