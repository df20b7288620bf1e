"""Events on the ``conversations`` topic and the CloudEvent envelope the sidecar delivers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from daca.contracts.ids import Identifier
from daca.contracts.models import (
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    MAX_REPLY_CHARS,
    Timestamp,
    utc_now_iso,
)


class ConversationUpdated(BaseModel):
    """Published by the chat service after each reply.

    ``turn_id`` makes handling idempotent; the tutorial's publisher omits it (and the
    timestamp), so both are optional on the wire.
    """

    event_type: Literal["ConversationUpdated"] = "ConversationUpdated"
    user_id: Identifier
    session_id: Identifier
    turn_id: Identifier | None = None
    user_message: str = Field(max_length=MAX_MESSAGE_CHARS)
    assistant_reply: str = Field(max_length=MAX_REPLY_CHARS)
    timestamp: Timestamp = Field(default_factory=utc_now_iso)


class UserRegistered(BaseModel):
    """Published by the chat service when a user registers."""

    event_type: Literal["UserRegistered"] = "UserRegistered"
    user_id: Identifier
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    preferred_style: str | None = Field(default=None, max_length=MAX_NAME_CHARS)


ConversationEvent = Annotated[
    ConversationUpdated | UserRegistered, Field(discriminator="event_type")
]
"""Any event of the ``conversations`` topic, discriminated on ``event_type``."""


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 envelope the sidecar wraps around a published event.

    Unknown envelope attributes (trace ids, extensions) are kept. ``id`` is optional because
    Dapr does not add one to a CloudEvent that an app publishes itself.
    """

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    source: str | None = None
    type: str | None = None
    specversion: str | None = None
    datacontenttype: str | None = None
    topic: str | None = None
    pubsubname: str | None = None
    time: str | None = None
    data: ConversationEvent


class RawCloudEvent(BaseModel):
    """A CloudEvent whose ``data`` is kept untyped (dead letters hold anything)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    data: Any = None
