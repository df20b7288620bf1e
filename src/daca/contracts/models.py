"""Conversation and user models (ids are ``daca.contracts.ids.Identifier``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from daca.contracts.ids import Identifier


def validate_timestamp(value: str) -> str:
    """Return ``value`` if it parses as an ISO 8601 date-time, else raise ``ValueError``."""
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 date-time") from exc
    return value


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def require_rfc3339_text(value: object) -> object:
    """``value`` if it is text laid out as an RFC 3339 date-time, else ``ValueError``.

    Only the layout: the date and time themselves are then checked when ``datetime`` parses
    the text (so ``2025-02-30T00:00:00Z`` is refused too). Numbers (Unix times), numeric text,
    dates without a time and times without an offset are refused: none is a ``date-time``.
    """
    if not (isinstance(value, str) and _RFC3339.fullmatch(value)):
        raise ValueError("must be an RFC 3339 date-time, such as 2025-04-07T15:00:00Z")
    return value


def utc_now_iso() -> str:
    """The current UTC time as an ISO 8601 string."""
    return datetime.now(UTC).isoformat()


#: Size limits of what is stored and later sent to the LLM (every request carrying more is a
#: 422, every event a DROP to the dead-letter topic).
MAX_MESSAGE_CHARS = 16_000  # a user message in an event (the chat API's own default is 4000)
MAX_QUERY_CHARS = 2_000  # a search query: it travels in a URL, and only its words matter
MAX_TITLE_CHARS = 80  # a session's title: its first message, shortened for a list
MAX_REPLY_CHARS = 32_000  # an assistant reply in an event
MAX_SUMMARY_CHARS = 4_000  # user_summary, initialised or written by the LLM
MAX_NAME_CHARS = 200  # name, preferred_style
MAX_GOAL_CHARS = 1_000

Timestamp = Annotated[
    str,
    AfterValidator(validate_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "description": "An ISO 8601 date-time as Python's datetime.fromisoformat reads it "
            "(2025-04-07T15:00:00+00:00; the tutorial's publisher sends local times without "
            "an offset).",
        }
    ),
]
"""An ISO 8601 date-time kept as text, as the tutorial's wire format does."""

DateTime = Annotated[datetime, BeforeValidator(require_rfc3339_text)]
"""A date-time as OpenAPI's ``format: date-time`` means it: RFC 3339 text, with its offset."""


class ConversationEntry(BaseModel):
    """One message of a session history (the tutorial's entry)."""

    role: Literal["user", "assistant"]
    content: str
    timestamp: Timestamp = Field(default_factory=utc_now_iso)


class ConversationTurn(BaseModel):
    """One user message and the assistant's reply, as the summarizer sees it."""

    session_id: Identifier
    turn_id: Identifier
    user_message: str
    assistant_reply: str
    timestamp: Timestamp


class ConversationHistory(BaseModel):
    """A session's history, or its most recent entries when read with a limit."""

    session_id: Identifier
    history: list[ConversationEntry] = Field(default_factory=list)
    total_entries: int = Field(default=0, ge=0)


class UserProfile(BaseModel):
    """The profile fields a client may set (``POST /memories/{user_id}/initialize``).

    Unknown fields are refused, so a misspelt field is a clear 422, not silently ignored.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    preferred_style: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    goal: str | None = Field(default=None, max_length=MAX_GOAL_CHARS)
    user_summary: str | None = Field(default=None, max_length=MAX_SUMMARY_CHARS)


class UserMetadata(BaseModel):
    """What the memory service knows about a user (the tutorial's ``GET /memories`` shape).

    ``name``, ``preferred_style``, ``goal`` and ``user_summary`` are the tutorial's fields; the
    ``summary_*`` fields record what the summary covers and when it was written.
    """

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    preferred_style: str | None = None
    goal: str | None = None
    user_summary: str | None = None
    summary_turn_count: int = Field(default=0, ge=0)
    summary_last_turn_id: str | None = None
    summary_updated_at: str | None = None


MAX_FACT_CHARS = 500  # one atomic statement about the user


class Fact(BaseModel):
    """One statement about the user the memory service extracted from their turns, with where
    it came from. A newer fact that contradicts it sets ``superseded_by`` (the fact is kept as
    history); ``GET /memories/{user_id}/facts`` lists the current ones."""

    fact_id: Identifier
    text: str = Field(max_length=MAX_FACT_CHARS)
    turn_ids: list[Identifier]
    session_id: Identifier
    timestamp: Timestamp = Field(description="when the user said it (the turn's timestamp)")
    created_at: Timestamp
    superseded_by: Identifier | None = None
    superseded_at: Timestamp | None = None


class Facts(BaseModel):
    """A user's facts, oldest first."""

    user_id: Identifier
    facts: list[Fact] = Field(default_factory=list)


class SessionInfo(BaseModel):
    """One of a user's sessions, as the memory service knows it
    (``GET /memories/{user_id}/sessions``)."""

    session_id: Identifier
    title: str = Field(
        max_length=MAX_TITLE_CHARS, description="the session's first message, shortened"
    )
    started_at: Timestamp
    last_at: Timestamp
    turns: int = Field(ge=1, description="how many of the session's turns the memory holds")


class Sessions(BaseModel):
    """A user's sessions, the most recently active first."""

    user_id: Identifier
    sessions: list[SessionInfo] = Field(default_factory=list)


class SearchResult(BaseModel):
    """One memory a search found (``GET /memories/{user_id}/search``), with where it came from."""

    kind: Literal["fact", "turn"]
    text: str
    reply: str | None = None
    fact_id: Identifier | None = Field(default=None, description="set for a fact")
    turn_ids: list[Identifier]
    session_id: Identifier
    timestamp: Timestamp
    score: float = Field(ge=0)


class SearchResults(BaseModel):
    """The memories that best match a query, best first."""

    results: list[SearchResult] = Field(default_factory=list)


class MemoryContext(BaseModel):
    """What the chat reads for one reply, in one call (``GET /memories/{user_id}/context``): the
    user's metadata, the session's most recent entries, and the memories of the user's other
    sessions that match the message. A part the service could not read is left at its default
    and named in ``unavailable``."""

    metadata: UserMetadata = Field(default_factory=UserMetadata)
    recent: list[ConversationEntry] = Field(default_factory=list)
    relevant: list[SearchResult] = Field(default_factory=list)
    unavailable: list[Literal["metadata", "recent", "relevant"]] = Field(default_factory=list)
