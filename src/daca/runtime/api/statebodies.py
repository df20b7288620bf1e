"""The state API's request bodies, as daprd's Go types, and how they are read.

A body is read up to the size limit (:mod:`.bodylimit`), parsed as Go's decoder parses it
(:func:`~daca.runtime.godecode.parse_body`) and decoded into daprd's type for it
(:mod:`.gomodels`); what fails is 400 ``ERR_MALFORMED_REQUEST`` with Go's words.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import Field
from starlette.requests import Request

from daca.runtime.api.bodylimit import BodyTooLargeError, read_body
from daca.runtime.api.gomodels import GoBody, GoStruct
from daca.runtime.errors import MalformedRequest
from daca.runtime.godecode import BodyError, parse_body

T = TypeVar("T")

#: The prefix daprd puts before a body's error, except when saving.
DESERIALIZING = "failed deserializing HTTP body: "


class SetStateOption(GoStruct):
    go_name = "state.SetStateOption"
    concurrency: str = Field(alias="Concurrency")  # no JSON tags: Go's field names
    consistency: str = Field(alias="Consistency")


class SetRequest(GoStruct):
    go_name = "state.SetRequest"
    key: str
    value: Any
    etag: str
    metadata: dict[str, str]
    options: SetStateOption
    content_type: str = Field(alias="contentType")


class BulkGetRequest(GoStruct):
    go_name = "http.BulkGetRequest"
    metadata: dict[str, str]
    keys: list[str]
    parallelism: int


class TransactionOperation(GoStruct):
    go_name = "http.stateTransactionRequestBodyOperation"
    operation: str
    request: Any  # decoded by mapstructure once its operation is known


class TransactionRequest(GoStruct):
    go_name = "http.stateTransactionRequestBody"
    operations: list[TransactionOperation]
    metadata: dict[str, str]


SAVE_BODY = GoBody(list[SetRequest])
BULK_BODY = GoBody(BulkGetRequest)
TRANSACTION_BODY = GoBody(TransactionRequest)


async def read_body_as(request: Request, body_type: GoBody[T], *, prefixed: bool) -> T:
    """The body decoded into ``body_type``; daprd prefixes the message except when saving."""
    prefix = DESERIALIZING if prefixed else ""
    try:
        body, cut = await read_body(request), False
    except BodyTooLargeError as exc:
        body, cut = exc.head, True
    try:
        parsed = parse_body(body, cut=cut)
        return body_type.decode(parsed.value, overflow=parsed.overflow)
    except (BodyError, ValueError) as exc:
        raise MalformedRequest(f"{prefix}{exc}") from None
