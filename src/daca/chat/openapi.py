"""The chat service's OpenAPI document: every answer of every route, in the service's mode.

The routes declare the answers that do not depend on the mode (``*_RESPONSES``);
``access_responses`` adds the mode's: local mode's guard refuses with 403 on every route;
production mode answers 401 (no valid bearer token) and 403 (another user's ``user_id``) on the
routes that act for a user. ``complete`` then states what the settings decide: the message
text's limits, and the bearer token only where it is checked (production mode).
"""

from __future__ import annotations

from typing import Any

from daca.access.settings import AccessSettings
from daca.chat.errors import (
    BacklogFullError,
    InvalidMessageError,
    MemoryUnavailableError,
    MessageTooLongError,
    ModelFailedError,
    ModelTimeoutError,
    SessionNotFoundError,
    UnauthenticatedError,
    WrongUserError,
)
from daca.chat.settings import ChatSettings
from daca.contracts.openapi import (
    LOCAL_MODE_REFUSAL,
    Completion,
    ErrorDetail,
    Responses,
    ValidationFailed,
    drop_security,
    error_responses,
)

_INTERNAL = {500: "An unexpected error; nothing is stored."}
_UNREADABLE = "The body cannot be read: it is not UTF-8 text."

ROOT_RESPONSES = error_responses(_INTERNAL)

#: ``GET /me`` takes only headers; a malformed one (e.g. ``Transfer-Encoding``) is refused by the
#: HTTP server itself.
ME_RESPONSES = error_responses(
    {400: "The request is not valid HTTP (a malformed header); refused by the server.", **_INTERNAL}
)

CHAT_RESPONSES: Responses = {
    **error_responses(
        {
            InvalidMessageError.status_code: "The text is empty or only whitespace; or "
            + _UNREADABLE,
            SessionNotFoundError.status_code: "The session belongs to another user.",
            ModelFailedError.status_code: "The language model failed; nothing was stored.",
            BacklogFullError.status_code: "Too many turns wait to be recorded; try again.",
            ModelTimeoutError.status_code: "The language model did not answer in time; "
            "nothing was stored.",
            **_INTERNAL,
        }
    ),
    MessageTooLongError.status_code: {
        "model": ValidationFailed | ErrorDetail,
        "description": "The request does not match the schema, or the text is longer than "
        "MAX_MESSAGE_CHARS (then the detail is one sentence naming the limit).",
    },
}

STREAM_RESPONSES: Responses = {
    200: {
        "description": "Server-Sent Events: `memories`, `delta`..., `tool_call`/`tool_output`, "
        "then `done` (the `Response`) or `error` (`{status, detail}`).",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "One event; `data` is JSON.",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {
                            "enum": [
                                "memories", "delta", "tool_call", "tool_output", "done", "error"
                            ],
                        },
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                },
            },
        },
    },
    **{status: answer for status, answer in CHAT_RESPONSES.items()
       if status not in (ModelFailedError.status_code, ModelTimeoutError.status_code)},
}  # fmt: skip

FORGET_RESPONSES = error_responses(
    {
        404: "No such route: an id that holds a `/` names another path.",
        422: "The user id is not a valid id.",
        MemoryUnavailableError.status_code: "The memory service could not be reached or "
        "failed; nothing was changed: try again.",
        **_INTERNAL,
    }
)

FACT_RESPONSES = {
    **FORGET_RESPONSES,
    **error_responses({404: "The user has no fact of that id (or the path names no route)."}),
}

SESSION_RESPONSES = {
    **FORGET_RESPONSES,
    **error_responses({404: "The user has no session of that id (or the path names no route)."}),
}

USERS_RESPONSES = error_responses(
    {400: _UNREADABLE, 422: "The request does not match the schema.", **_INTERNAL}
)

_UNAUTHENTICATED = {
    "model": ErrorDetail,
    "description": "Production mode: no bearer token, or one that does not prove a user.",
    "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
}


def access_responses(access: AccessSettings, *, acts_for_a_user: bool) -> Responses:
    """The answers the access mode adds to a route (``acts_for_a_user``: it takes a user_id)."""
    if not access.production:
        return error_responses({403: LOCAL_MODE_REFUSAL})
    if not acts_for_a_user:
        return {}
    wrong_user = "Production mode: the user_id is not the token's user."
    return {
        UnauthenticatedError.status_code: _UNAUTHENTICATED,
        **error_responses({WrongUserError.status_code: wrong_user}),
    }


def completion(settings: ChatSettings) -> Completion:
    """The function that finishes the generated document for these settings."""

    def complete(document: dict[str, Any]) -> None:
        text = document["components"]["schemas"]["Message"]["properties"]["text"]
        text.update(
            minLength=1,
            maxLength=settings.max_message_chars,
            pattern=r"\S",
            description="At least one character that is not whitespace (else 400), at most "
            f"{settings.max_message_chars} characters (MAX_MESSAGE_CHARS, else 422).",
        )
        if not settings.access.production:
            drop_security(document)

    return complete
