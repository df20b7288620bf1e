"""FastAPI dependencies of the memory service, as ``Annotated`` aliases."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
from pydantic import ValidationError

from daca.contracts.events import CloudEvent
from daca.memory.container import MemoryServices

logger = logging.getLogger(__name__)


def get_services(request: Request) -> MemoryServices:
    """The services the lifespan built."""
    services: MemoryServices = request.app.state.services
    return services


Services = Annotated[MemoryServices, Depends(get_services)]


def verify_app_token(
    services: Services, token: Annotated[str | None, Header(alias="dapr-api-token")] = None
) -> None:
    """When ``APP_API_TOKEN`` is set, require the sidecar's ``dapr-api-token`` header."""
    expected = services.settings.app_api_token
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


Envelope = Annotated[CloudEvent | None, Depends(read_envelope)]
RawEvent = Annotated[dict[str, Any], Depends(read_raw_event)]
AppToken = Depends(verify_app_token)
