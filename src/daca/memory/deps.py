"""FastAPI dependencies of the memory service, as ``Annotated`` aliases."""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from pydantic import BeforeValidator, ValidationError, WithJsonSchema

from daca.contracts.events import CloudEvent
from daca.memory.container import MemoryServices

logger = logging.getLogger(__name__)


async def get_services(request: Request) -> MemoryServices:
    """The services the lifespan built (a coroutine, as every dependency here: FastAPI runs a
    plain function in a worker thread, a hand-off that costs more than the function)."""
    services: MemoryServices = request.app.state.services
    return services


Services = Annotated[MemoryServices, Depends(get_services)]


_app_token = APIKeyHeader(
    name="dapr-api-token",
    scheme_name="AppApiToken",
    description="APP_API_TOKEN, which the sidecar sends with every delivery and invocation",
    auto_error=False,
)


async def verify_app_token(
    services: Services, token: Annotated[str | None, Security(_app_token)]
) -> None:
    """When ``APP_API_TOKEN`` is set, require the sidecar's ``dapr-api-token`` header."""
    expected = services.settings.dapr.app_api_token
    if expected and not secrets.compare_digest((token or "").encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing dapr-api-token")


#: What a sidecar delivers an event as. Anything else (``text/plain``, a form) is refused with
#: 415: a browser may send those cross-site without a preflight.
EVENT_CONTENT_TYPES = frozenset({"application/cloudevents+json", "application/json"})


def require_event_content_type(request: Request) -> None:
    """415 unless the body is declared as a CloudEvent (or JSON)."""
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared not in EVENT_CONTENT_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "events are accepted as application/cloudevents+json (or application/json) only",
        )


async def read_envelope(request: Request) -> CloudEvent | None:
    """The delivered CloudEvent, or ``None`` when it does not validate (the caller DROPs it).

    Read from the raw body so FastAPI never answers 422 to the sidecar.
    """
    require_event_content_type(request)
    try:
        return CloudEvent.model_validate_json(await request.body())
    except ValidationError as exc:
        logger.warning("undeliverable event: %d validation errors", exc.error_count())
        return None


async def read_raw_event(request: Request) -> dict[str, Any]:
    """The delivered body as a JSON object; anything else is wrapped as ``{"raw": text}``."""
    require_event_content_type(request)
    body = await request.body()
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        return {"raw": body.decode(errors="replace")}
    return value if isinstance(value, dict) else {"raw": value}


_DIGITS = re.compile(r"[0-9]+")


def _digits_only(value: object) -> object:
    """``value`` if it is written in ASCII digits only (no sign, space, ``_`` or ``.``)."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be a whole number >= 0, in digits")
    return value


async def read_limit(
    request: Request,
    limit: Annotated[
        int | None,
        Query(ge=0, description="Only the most recent N entries."),
        BeforeValidator(_digits_only),
        WithJsonSchema({"type": "integer", "minimum": 0}),
    ] = None,
) -> int | None:
    """The ``limit`` query parameter: one whole number >= 0, given at most once (a repeated
    parameter is an array, not the integer the API takes: 422)."""
    given = request.query_params.getlist("limit")
    if len(given) > 1:
        issue = {"type": "too_many_values", "loc": ("query", "limit"), "input": given,
                 "msg": "limit must be given at most once"}  # fmt: skip
        raise RequestValidationError([issue])
    return limit


Envelope = Annotated[CloudEvent | None, Depends(read_envelope)]
RawEvent = Annotated[dict[str, Any], Depends(read_raw_event)]
Limit = Annotated[int | None, Depends(read_limit)]
AppToken = Depends(verify_app_token)
