"""The chat service's HTTP API models (the tutorial's ``Message`` and ``Response``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from daca.contracts.ids import Identifier
from daca.contracts.models import MAX_NAME_CHARS


def _now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


class Metadata(BaseModel):
    """Optional request metadata: when it was sent and which session it continues."""

    timestamp: datetime = Field(default_factory=_now)
    session_id: Identifier | None = None


class Message(BaseModel):
    """A user's chat message."""

    user_id: Identifier
    text: str
    metadata: Metadata | None = None
    tags: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=20)


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

    user_id: Identifier
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    preferred_style: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
