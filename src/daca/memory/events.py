"""Handling of the ``conversations`` topic: the typed CloudEvent in, a Dapr status out.

``SUCCESS`` when the event is stored (or was already), ``DROP`` for a malformed or unknown
event, one that reuses a stored turn's id with other content, or one whose records in the store
are unreadable (it then lands in the dead-letter topic, and is kept), ``RETRY`` for transient
failures: sidecar or state store unavailable, ETag conflicts that outlasted the retries, failed
transactions.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Literal

from pydantic import BaseModel

from daca.contracts.events import CloudEvent, ConversationUpdated, UserRegistered
from daca.contracts.models import ConversationTurn
from daca.dapr.errors import DaprClientError
from daca.memory.errors import PERMANENT, MemoryServiceError
from daca.memory.history import HistoryStore
from daca.memory.metrics import Counters
from daca.memory.summarizer import Summarizer
from daca.memory.users import UserStore

logger = logging.getLogger(__name__)

Status = Literal["SUCCESS", "RETRY", "DROP"]


class TopicResponse(BaseModel):
    """The answer Dapr reads from a subscriber."""

    status: Status


def derived_turn_id(event: ConversationUpdated, cloud_event_id: str | None) -> str:
    """A deterministic turn id for an event without one: from the CloudEvent id, else content."""
    if cloud_event_id:
        return "ce-" + hashlib.sha256(cloud_event_id.encode()).hexdigest()[:40]
    fields = ["user_id", "session_id", "user_message", "assistant_reply", "timestamp"]
    content = event.model_dump(include={f for f in fields if f in event.model_fields_set})
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return "h-" + digest[:40]


def turn_of(event: ConversationUpdated, cloud_event_id: str | None) -> ConversationTurn:
    """The turn an event describes, with its (possibly derived) turn id."""
    return ConversationTurn(
        session_id=event.session_id,
        turn_id=event.turn_id or derived_turn_id(event, cloud_event_id),
        user_message=event.user_message,
        assistant_reply=event.assistant_reply,
        timestamp=event.timestamp,
    )


class EventHandler:
    """Applies ``conversations`` events to history, users and the summarizer."""

    def __init__(
        self, history: HistoryStore, users: UserStore, summarizer: Summarizer, counters: Counters
    ) -> None:
        self._history = history
        self._users = users
        self._summarizer = summarizer
        self._counters = counters

    async def handle(self, envelope: CloudEvent | None) -> Status:
        """The status for one delivery (``None`` means it did not validate)."""
        if envelope is None:
            self._counters.events_dropped += 1
            return "DROP"
        try:
            await self._apply(envelope)
        except PERMANENT as exc:
            self._counters.events_dropped += 1
            logger.warning("event %s: %s; DROP (dead-lettered, kept)", envelope.id, exc)
            return "DROP"
        except (DaprClientError, MemoryServiceError) as exc:
            self._counters.events_retried += 1
            logger.warning(
                "event %s: transient failure (%s), RETRY", envelope.id, type(exc).__name__
            )
            return "RETRY"
        self._counters.events_handled += 1
        return "SUCCESS"

    async def _apply(self, envelope: CloudEvent) -> None:
        """Dispatch on the event type."""
        event = envelope.data
        if isinstance(event, UserRegistered):
            await self._users.register(event)
            logger.info("event %s: user %s registered", envelope.id, event.user_id)
        else:
            await self._conversation(event, envelope.id)

    async def _conversation(self, event: ConversationUpdated, cloud_event_id: str | None) -> None:
        """Append the turn, then hand the user to the summarizer."""
        turn = turn_of(event, cloud_event_id)
        if await self._history.append(event.user_id, turn):
            logger.info("stored turn %s of session %s", turn.turn_id, turn.session_id)
        else:
            self._counters.duplicates_skipped += 1
            logger.info("turn %s of session %s already stored", turn.turn_id, turn.session_id)
        self._summarizer.mark_dirty(event.user_id)
