"""The state API's request bodies, as daprd's Go types, and how they are read.

A body is read up to the size limit (:mod:`.bodylimit`), parsed as Go's decoder parses it
(:func:`~daca.runtime.godecode.parse_body`) and assigned to daprd's type for it
(:mod:`daca.runtime.gotypes`); what fails is 400 ``ERR_MALFORMED_REQUEST`` with Go's words.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from daca.runtime.api.bodylimit import BodyTooLargeError, read_body
from daca.runtime.api.common import malformed
from daca.runtime.godecode import BodyError, parse_body
from daca.runtime.gotypes import ANY, STRING, STRING_MAP, GoDecoder, GoType

#: The prefix daprd puts before a body's error, except when saving.
DESERIALIZING = "failed deserializing HTTP body: "

_OPTIONS = (("Concurrency", STRING), ("Consistency", STRING))  # no JSON tags
_SET_REQUEST = GoType(
    "state.SetRequest",
    "struct",
    fields=(
        ("key", STRING),
        ("value", ANY),
        ("etag", STRING),
        ("metadata", STRING_MAP),
        ("options", GoType("state.SetStateOption", "struct", fields=_OPTIONS)),
        ("contentType", STRING),
    ),
)
SAVE_BODY = GoType("[]state.SetRequest", "list", _SET_REQUEST)
BULK_BODY = GoType(
    "http.BulkGetRequest",
    "struct",
    fields=(
        ("metadata", STRING_MAP),
        ("keys", GoType("[]string", "list", STRING)),
        ("parallelism", GoType("int", "int")),
    ),
)
_OPERATION = GoType(
    "http.stateTransactionRequestBodyOperation",
    "struct",
    fields=(("operation", STRING), ("request", ANY)),
)
TRANSACTION_BODY = GoType(
    "http.stateTransactionRequestBody",
    "struct",
    fields=(
        ("operations", GoType("[]http.stateTransactionRequestBodyOperation", "list", _OPERATION)),
        ("metadata", STRING_MAP),
    ),
)


async def read_body_as(request: Request, go: GoType, *, prefixed: bool) -> Any:
    """The body decoded into ``go``; daprd prefixes the message except when saving."""
    prefix = DESERIALIZING if prefixed else ""
    try:
        body, cut = await read_body(request), False
    except BodyTooLargeError as exc:
        body, cut = exc.head, True
    try:
        parsed = parse_body(body, cut=cut)
    except BodyError as exc:
        raise malformed(f"{prefix}{exc}") from None
    decoder = GoDecoder(overflow=parsed.overflow)
    decoded = decoder.decode(parsed.value, go)
    if decoder.error is not None:
        raise malformed(f"{prefix}{decoder.error}")
    return decoded
