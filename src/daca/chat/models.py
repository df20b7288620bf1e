"""The chat service's HTTP API models (the tutorial's ``Message`` and ``Response``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from daca.contracts.ids import Identifier
from daca.contracts.models import MAX_NAME_CHARS, DateTime, Fact


def _now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


class Metadata(BaseModel):
    """Optional request metadata: when it was sent and which session it continues."""

    timestamp: DateTime = Field(default_factory=_now)
    session_id: Identifier | None = None


class Message(BaseModel):
    """A user's chat message.

    ``text`` must hold a character that is not whitespace (else 400) and at most
    ``MAX_MESSAGE_CHARS`` characters (else 422): the service checks both itself, so that the
    answers keep their statuses, and its OpenAPI document states both (``daca.chat.openapi``).
    """

    user_id: Identifier
    text: str
    metadata: Metadata | None = None
    tags: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=20)


class ResponseMetadata(BaseModel):
    """The reply's time and the session it belongs to."""

    timestamp: datetime = Field(default_factory=_now)
    session_id: Identifier


class Response(BaseModel):
    """The agent's reply."""

    user_id: Identifier
    reply: str
    metadata: ResponseMetadata


class UserRegistration(BaseModel):
    """``POST /users``: register a user's name and preferred style."""

    user_id: Identifier
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    preferred_style: str | None = Field(default=None, max_length=MAX_NAME_CHARS)


class Welcome(BaseModel):
    """``GET /``."""

    message: str


class RecorderCounters(BaseModel):
    """The turn recorder's counters (``daca.chat.recorder.RecorderStats``)."""

    pending: int = Field(ge=0)
    recorded: int = Field(ge=0)
    retried: int = Field(ge=0)
    failed: int = Field(ge=0)
    dropped: int = Field(ge=0)


class Health(BaseModel):
    """``GET /healthz``: liveness, the model in use and the recorder's counters."""

    status: Literal["ok"]
    model: str
    recorder: RecorderCounters


class UserMemory(BaseModel):
    """``GET /memories/{user_id}`` on the chat service: what the agent knows about the user."""

    user_id: Identifier
    name: str | None = None
    user_summary: str | None = None
    facts: list[Fact]


class Forgotten(BaseModel):
    """``DELETE /memories/{user_id}``: the user's sessions that were forgotten."""

    status: Literal["forgotten"]
    user_id: Identifier
    sessions: list[Identifier]


class Identity(BaseModel):
    """``GET /me``: the service's access mode and, in production mode, the token's user."""

    mode: Literal["local", "production"]
    user_id: Identifier | None = Field(
        default=None, description="the token's user (production mode); local mode has none"
    )
