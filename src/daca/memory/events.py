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
from collections.abc import Awaitable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daca.contracts.events import CloudEvent, ConversationUpdated, UserRegistered
from daca.contracts.models import ConversationTurn
from daca.dapr.errors import DaprClientError
from daca.memory.errors import PERMANENT, MemoryServiceError
from daca.memory.history import HistoryStore, UserTurn
from daca.memory.metrics import Counters
from daca.memory.summarizer import Summarizer
from daca.memory.users import UserStore

logger = logging.getLogger(__name__)

Status = Literal["SUCCESS", "RETRY", "DROP"]


class TopicResponse(BaseModel):
    """The answer Dapr reads from a subscriber."""

    status: Status


class BulkEntry(BaseModel):
    """One event of a bulk delivery (daprd's ``BulkSubscribeMessageItem``)."""

    model_config = ConfigDict(populate_by_name=True)

    entry_id: str = Field(alias="entryId", min_length=1)
    event: Any = None
    content_type: str = Field(default="", alias="contentType")
    metadata: dict[str, str] | None = None


class BulkEnvelope(BaseModel):
    """A bulk delivery, as daprd POSTs it to a subscription with ``bulkSubscribe`` enabled."""

    id: str = ""
    type: str = ""
    topic: str = ""
    pubsubname: str = ""
    metadata: dict[str, str] | None = None
    entries: list[BulkEntry]

    def events(self) -> list[CloudEvent | None]:
        """Each entry's CloudEvent, ``None`` where it does not validate (it is DROPped)."""
        return [_cloud_event(entry) for entry in self.entries]


def _cloud_event(entry: BulkEntry) -> CloudEvent | None:
    try:
        return CloudEvent.model_validate(entry.event)
    except ValidationError as exc:
        logger.warning(
            "undeliverable event (entry %s): %d validation errors", entry.entry_id,
            exc.error_count(),
        )  # fmt: skip
        return None


class EntryStatus(BaseModel):
    """The answer for one entry of a bulk delivery."""

    model_config = ConfigDict(populate_by_name=True)

    entry_id: str = Field(serialization_alias="entryId")
    status: Status


class BulkTopicResponse(BaseModel):
    """The answer Dapr reads from a bulk subscriber: a status per entry."""

    statuses: list[EntryStatus]


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
        return (await self.handle_many([envelope]))[0]

    async def handle_many(self, envelopes: Sequence[CloudEvent | None]) -> list[Status]:
        """The status of each event of one bulk delivery, in order.

        The conversation turns are appended together (one batch, a few state calls for all);
        when the batch meets a permanent failure its turns are appended one by one, so only the
        event at fault is dropped.
        """
        statuses: list[Status] = ["DROP"] * len(envelopes)
        conversations: list[tuple[int, CloudEvent]] = []
        for index, envelope in enumerate(envelopes):
            if envelope is None:
                self._counters.events_dropped += 1
            elif isinstance(envelope.data, UserRegistered):
                statuses[index] = await self._outcome(envelope, self._register(envelope))
            else:
                conversations.append((index, envelope))
        if len(conversations) == 1:
            index, envelope = conversations[0]
            statuses[index] = await self._outcome(envelope, self._conversations([envelope]))
        elif conversations:
            batch = [envelope for _, envelope in conversations]
            try:
                await self._conversations(batch)
            except PERMANENT as exc:
                logger.info("a batch of %d turns: %s; appending one by one", len(batch), exc)
                for index, envelope in conversations:
                    statuses[index] = await self._outcome(envelope, self._conversations([envelope]))
            except (DaprClientError, MemoryServiceError) as exc:
                self._counters.events_retried += len(batch)
                logger.warning(
                    "a batch of %d turns: transient failure (%s), RETRY", len(batch),
                    type(exc).__name__,
                )  # fmt: skip
                for index, _ in conversations:
                    statuses[index] = "RETRY"
            else:
                for index, _ in conversations:
                    statuses[index] = self._handled()
        return statuses

    async def _outcome(self, envelope: CloudEvent, work: Awaitable[None]) -> Status:
        """The status of one event once ``work`` has applied it."""
        try:
            await work
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
        return self._handled()

    def _handled(self) -> Status:
        self._counters.events_handled += 1
        return "SUCCESS"

    async def _register(self, envelope: CloudEvent) -> None:
        event = envelope.data
        assert isinstance(event, UserRegistered)
        await self._users.register(event)
        logger.info("event %s: user %s registered", envelope.id, event.user_id)

    async def _conversations(self, envelopes: Sequence[CloudEvent]) -> None:
        """Append the events' turns in one batch, then hand their users to the summarizer."""
        batch = []
        for envelope in envelopes:
            event = envelope.data
            assert isinstance(event, ConversationUpdated)
            batch.append(UserTurn(event.user_id, turn_of(event, envelope.id)))
        results = await self._history.append_many(batch)
        stored_by_user = dict.fromkeys((item.user_id for item in batch), 0)
        for item, stored in zip(batch, results, strict=True):
            stored_by_user[item.user_id] += stored
            if not stored:
                logger.debug(
                    "turn %s of session %s already stored", item.turn.turn_id, item.turn.session_id
                )
        repeats = results.count(False)
        self._counters.duplicates_skipped += repeats
        sessions = len({item.turn.session_id for item in batch})
        logger.info(
            "stored %d turns of %d sessions (%d already stored)",
            len(batch) - repeats, sessions, repeats,
        )  # fmt: skip
        for user_id, turns in stored_by_user.items():
            self._summarizer.mark_dirty(user_id, turns)
