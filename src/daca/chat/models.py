"""The chat service's HTTP API models (the tutorial's ``Message`` and ``Response``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from daca.contracts.models import Identifier

_URL_UNSAFE = frozenset("/?#%")


def _path_safe(value: str) -> str:
    """Reject ids that cannot travel as one URL path segment."""
    if any(char in _URL_UNSAFE or char.isspace() for char in value):
        raise ValueError("must not contain '/', '?', '#', '%' or whitespace")
    return value


PathId = Annotated[Identifier, AfterValidator(_path_safe)]
"""A user or session id: an ``Identifier`` that is also a safe URL path segment."""


def _now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


class Metadata(BaseModel):
    """Optional request metadata: when it was sent and which session it continues."""

    timestamp: datetime = Field(default_factory=_now)
    session_id: PathId | None = None


class Message(BaseModel):
    """A user's chat message."""

    user_id: PathId
    text: str
    metadata: Metadata | None = None
    tags: list[str] | None = None


class ResponseMetadata(BaseModel):
    """The reply's time and the session it belongs to."""

    timestamp: datetime = Field(default_factory=_now)
    session_id: str


class Response(BaseModel):
    """The agent's reply."""

    user_id: str
    reply: str
    metadata: ResponseMetadata


class UserRegistration(BaseModel):
    """``POST /users``: register a user's name and preferred style."""

    user_id: PathId
    name: str | None = Field(default=None, max_length=200)
    preferred_style: str | None = Field(default=None, max_length=200)
