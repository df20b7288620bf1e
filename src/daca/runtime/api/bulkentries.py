"""A bulk publish body as daprd reads it: ``[]bulkPublishMessageEntry``, each event in bytes.

The body is decoded as Go decodes it into daprd's type (keys in any case, its type errors;
:mod:`.gomodels`); each entry's event becomes the bytes published as daprd's
``ConvertEventToBytes`` makes them (base64 decoded for ``application/octet-stream``, a string
for text, JSON for JSON and CloudEvents).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import Field

from daca.runtime.api.bodylimit import TOO_LARGE
from daca.runtime.api.gomodels import GoBody, GoStruct
from daca.runtime.cloudevents import (
    is_binary_content_type,
    is_cloudevent_content_type,
    is_json_content_type,
    is_string_content_type,
)
from daca.runtime.godecode import first_value
from daca.runtime.gojson import marshal

_CONTENT_MISMATCH = "error: mismatch between contentType and event"


class Entry(GoStruct):
    go_name = "http.bulkPublishMessageEntry"
    entry_id: str = Field(alias="entryId")
    event: Any
    content_type: str = Field(alias="contentType")
    metadata: dict[str, str] | None  # None: the entry has none (not even ``{}``)


_BODY = GoBody(list[Entry])


def decode_entries(body: bytes, *, cut: bool = False) -> list[Entry]:
    """``body`` as Go's ``json.Decoder`` reads it into ``[]bulkPublishMessageEntry``; ``cut``:
    the body was stopped at the size limit. ``ValueError`` with Go's message."""
    return _BODY.decode(_first_value(body, cut))


def _first_value(body: bytes, cut: bool) -> Any:
    if not body.strip(b" \t\r\n"):
        raise ValueError(TOO_LARGE if cut else "EOF")
    try:
        return first_value(body)
    except json.JSONDecodeError as exc:
        rest = exc.doc[exc.pos :].strip(" \t\r\n")
        if cut and (not rest or exc.msg.startswith("Unterminated string")):
            raise ValueError(TOO_LARGE) from None  # Go needed more than the limit let it read
        if not rest:
            raise ValueError("unexpected EOF") from None
        raise ValueError(f"invalid character {rest[0]!r} looking for beginning of value") from None


def event_bytes(event: Any, content_type: str) -> bytes:
    """daprd's ``ConvertEventToBytes``; ``ValueError`` with its message."""
    if is_binary_content_type(content_type):
        if not isinstance(event, str):
            raise ValueError(_CONTENT_MISMATCH)
        try:
            return base64.b64decode(event.replace("\r", "").replace("\n", ""), validate=True)
        except binascii.Error:
            problem = "unable to decode base64 application/octect-stream data: illegal base64 data"
            raise ValueError(f"error: {problem}") from None
    if is_string_content_type(content_type):
        if not isinstance(event, str):
            raise ValueError(_CONTENT_MISMATCH)
        return event.encode()
    if is_json_content_type(content_type) or is_cloudevent_content_type(content_type):
        return marshal(event)
    raise ValueError(_CONTENT_MISMATCH)
