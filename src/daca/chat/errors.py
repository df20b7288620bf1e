"""Errors of the chat service, each carrying the HTTP status it is rendered with.

::

    ChatError
    ├── InvalidMessageError     400  empty or whitespace-only text
    ├── MessageTooLongError     422  text over MAX_MESSAGE_CHARS
    ├── UnauthenticatedError    401  production mode: no valid bearer token
    ├── WrongUserError          403  production mode: the body's user_id is not the token's
    ├── SessionNotFoundError    404  the session belongs to another user
    ├── BacklogFullError        503  too many turns wait to be recorded: nothing is accepted
    ├── ModelFailedError        502  the LLM failed: nothing was stored
    └── ModelTimeoutError       504  the LLM did not answer in time: nothing was stored
"""

from __future__ import annotations


class ChatError(Exception):
    """Root of the chat service's errors; ``str(error)`` is the client-facing detail."""

    status_code = 500


class InvalidMessageError(ChatError):
    """The message text is empty or only whitespace."""

    status_code = 400


class MessageTooLongError(ChatError):
    """The message text is longer than the configured limit."""

    status_code = 422


class UnauthenticatedError(ChatError):
    """Production mode: the request carries no valid bearer token."""

    status_code = 401


class WrongUserError(ChatError):
    """Production mode: the request speaks for a user its token does not belong to."""

    status_code = 403


class SessionNotFoundError(ChatError):
    """The session id is another user's (a session belongs to the user who created it)."""

    status_code = 404


class BacklogFullError(ChatError):
    """Too many turns wait to be recorded; new turns are refused until it drains."""

    status_code = 503


class ModelFailedError(ChatError):
    """The language model (or its endpoint) failed to answer."""

    status_code = 502


class ModelTimeoutError(ChatError):
    """The language model did not answer within the time limit."""

    status_code = 504


class FactNotFoundError(ChatError):
    """The user has no fact of that id."""

    status_code = 404


class MemoryUnavailableError(ChatError):
    """The memory service could not be reached or failed, so nothing could be forgotten."""

    status_code = 503
