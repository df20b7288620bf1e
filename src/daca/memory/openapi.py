"""The memory service's OpenAPI document: every answer of every route, in the service's mode.

The routes declare the answers that do not depend on the settings; ``access_responses`` adds
local mode's 403 (on every route) and, when ``APP_API_TOKEN`` is set, the 401 of the routes that
only the sidecar may call. ``completion`` adds the ``CloudEvent`` schema that the subscriber's
raw body is documented with, and keeps the app token's security scheme only where it is set.

The subscribers read their body raw (``daca.memory.deps``): a malformed event is a 200 ``DROP``,
never a 422, since the sidecar must never be told the request itself was wrong.
"""

from __future__ import annotations

from typing import Any

from daca.contracts.events import CloudEvent
from daca.contracts.openapi import (
    LOCAL_MODE_REFUSAL,
    Completion,
    Responses,
    add_component_schemas,
    drop_security,
    error_responses,
)
from daca.memory.models import SidecarError
from daca.memory.settings import MemorySettings

_INTERNAL = {
    500: "An unexpected error, or a stored record that does not parse as what its key holds "
    "(the detail names it; it is left untouched).",
}
_STORE: Responses = {
    502: {"model": SidecarError, "description": "The sidecar answered with an error."},
    **error_responses(
        {
            503: "The sidecar (so the state store) cannot be reached, or concurrent updates "
            "kept conflicting; try again.",
        }
    ),
}
_BY_ID = {
    404: "No such route: an id that holds a `/` names another path.",
    422: "The request does not match the schema (an id, `limit` or the body).",
}
_EVENT_CONTENT = {
    415: "The body is not declared as `application/cloudevents+json` or `application/json`.",
}

SERVICE_RESPONSES = error_responses(_INTERNAL)
STORE_RESPONSES: Responses = {**error_responses(_INTERNAL), **_STORE}
BY_ID_RESPONSES: Responses = {**error_responses({**_BY_ID, **_INTERNAL}), **_STORE}
BY_ID_WITH_BODY_RESPONSES: Responses = {
    **BY_ID_RESPONSES,
    **error_responses({400: "The body cannot be read: it is not UTF-8 text."}),
}
FACT_RESPONSES: Responses = {
    **BY_ID_RESPONSES,
    **error_responses({404: "The user has no fact of that id (or the path names no route)."}),
}
SUBSCRIBER_RESPONSES = error_responses({**_EVENT_CONTENT, **_INTERNAL})
BULK_SUBSCRIBER_RESPONSES = error_responses(
    {
        400: "The body cannot be read: it is not UTF-8 text.",
        422: "The body is not a bulk delivery (its entries' events are not checked: an entry "
        "whose event is not a valid CloudEvent is answered `DROP`).",
        **_INTERNAL,
    }
)

_EVENT_MEDIA_TYPES = ("application/cloudevents+json", "application/json")


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An ``openapi_extra`` request body of ``schema`` in both event media types."""
    content = {media_type: {"schema": schema} for media_type in _EVENT_MEDIA_TYPES}
    return {"requestBody": {"required": True, "description": description, "content": content}}


CLOUD_EVENT_BODY = _body(
    {"$ref": "#/components/schemas/CloudEvent"},
    "A CloudEvent of the `conversations` topic, as the sidecar delivers it. One that does not "
    "match this schema is answered `DROP` (so the sidecar dead-letters it), never 422.",
)
DEAD_LETTER_BODY = _body(
    {"title": "DeadLetter", "description": "Any JSON value."},
    "A dead-lettered CloudEvent, as the sidecar delivers it. Every body is kept: a JSON object "
    'as it is, anything else as `{"raw": ...}`.',
)


def access_responses(settings: MemorySettings, *, sidecar_only: bool) -> Responses:
    """The answers the access settings add to a route (``sidecar_only``: it takes the token)."""
    added = {} if settings.access.production else {403: LOCAL_MODE_REFUSAL}
    if sidecar_only and settings.dapr.app_api_token:
        added[401] = "The `dapr-api-token` header is missing or is not APP_API_TOKEN."
    return error_responses(added)


def completion(settings: MemorySettings) -> Completion:
    """The function that finishes the generated document for these settings."""

    def complete(document: dict[str, Any]) -> None:
        add_component_schemas(document, CloudEvent)
        if not settings.dapr.app_api_token:
            drop_security(document)

    return complete
