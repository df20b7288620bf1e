"""The chat service's durable record of its turns, published through Dapr's transactional outbox.

Each turn is ONE state transaction on the chat's own state store (``chat-statestore``, set up
with ``outboxPublishPubsub``/``outboxPublishTopic``): the session record ``session:{id}`` (who
owns the session and its most recent turns) is upserted with the ETag it was read with, and the
``ConversationUpdated`` event rides along as that key's ``outbox.projection``. When the
transaction commits, the sidecar publishes the event; if it does not commit, nothing is
published. So a reply the user saw always has a stored turn that will reach the memory service,
even if this process is killed right after answering, and the next message of the session reads
the turn back from here at once (read-your-writes), before pub/sub has delivered it.

A registration is recorded the same way under ``registration:{user_id}`` with its
``UserRegistered`` event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import BaseModel, Field

from daca.contracts.events import ConversationUpdated, UserRegistered
from daca.contracts.ids import Identifier
from daca.contracts.models import ConversationEntry
from daca.dapr.client import DaprClient
from daca.dapr.guarded import create_missing, guarded_upsert, outbox_projection
from daca.dapr.models import StateEntry, StateOperation, StateWrite
from daca.dapr.retry import ConflictError, retry_on_conflict

logger = logging.getLogger(__name__)

ATTEMPTS = 20


class RecentTurn(BaseModel):
    """One turn as the session record keeps it."""

    turn_id: Identifier
    user_message: str
    assistant_reply: str
    timestamp: str


class SessionRecord(BaseModel):
    """A session of the chat service: its owner and its most recent turns, oldest first."""

    session_id: Identifier
    user_id: Identifier
    turns: list[RecentTurn] = Field(default_factory=list)

    def with_turn(self, event: ConversationUpdated, keep: int) -> SessionRecord:
        """A copy with the event's turn added (once) and only the last ``keep`` turns kept."""
        turn = RecentTurn(
            turn_id=event.turn_id or "",
            user_message=event.user_message,
            assistant_reply=event.assistant_reply,
            timestamp=event.timestamp,
        )
        others = [t for t in self.turns if t.turn_id != turn.turn_id]
        return self.model_copy(update={"turns": [*others, turn][-keep:] if keep else []})

    def entries(self) -> list[ConversationEntry]:
        """The turns as history entries, oldest first."""
        return [
            entry
            for turn in self.turns
            for entry in (
                ConversationEntry(role="user", content=turn.user_message, timestamp=turn.timestamp),
                ConversationEntry(
                    role="assistant", content=turn.assistant_reply, timestamp=turn.timestamp
                ),
            )
        ]


class Registration(BaseModel):
    """What a user registered with."""

    user_id: Identifier
    name: str | None = None
    preferred_style: str | None = None


@dataclass(frozen=True)
class SessionRead:
    """The session record as read at the start of a turn, with its ETag (``entry`` is ``None``
    for a session not stored yet): the turn's transaction is guarded by it, so recording a turn
    needs no second read unless the session changed meanwhile."""

    entry: StateEntry | None

    @property
    def record(self) -> SessionRecord | None:
        return _record(self.entry)


class SessionOwnershipError(Exception):
    """The session exists and belongs to another user."""


def session_key(session_id: str) -> str:
    return f"session:{session_id}"


def registration_key(user_id: str) -> str:
    return f"registration:{user_id}"


class TurnLog:
    """Reads session records and commits turns and registrations with their events."""

    def __init__(
        self, dapr: DaprClient, store: str, *, keep_turns: int, ttl: int | None = None
    ) -> None:
        self._dapr = dapr
        self._store = store
        self._keep = keep_turns
        self._ttl = ttl

    async def read_session(self, session_id: str) -> SessionRead:
        """The session's record with its ETag."""
        return SessionRead(await self._dapr.get_state(self._store, session_key(session_id)))

    async def session(self, session_id: str) -> SessionRecord | None:
        """The session's record, or ``None`` for a session this service has not seen."""
        return (await self.read_session(session_id)).record

    async def record_turn(
        self, event: ConversationUpdated, read: SessionRead | None = None
    ) -> None:
        """Store the turn and have its event published, atomically (retried on conflicts).

        ``read`` is the session as the turn read it; the first attempt is guarded by it, and
        each retry reads the session again.
        """
        reads = [read] if read is not None else []
        await retry_on_conflict(
            lambda: self._record_turn_once(event, reads.pop() if reads else None),
            attempts=ATTEMPTS,
            what=f"record turn {event.turn_id}",
        )

    async def _record_turn_once(self, event: ConversationUpdated, read: SessionRead | None) -> None:
        key = session_key(event.session_id)
        empty = SessionRecord(session_id=event.session_id, user_id=event.user_id)
        entry = await self._read_or_create(key, empty, read)
        record = _record(entry)
        if record is None or record.user_id != event.user_id:
            raise SessionOwnershipError(event.session_id)
        operations = [
            guarded_upsert(key, record.with_turn(event, self._keep), entry, ttl=self._ttl),
            outbox_projection(key, event),
        ]
        await self._dapr.transact_state(self._store, operations)

    async def record_registration(self, event: UserRegistered) -> None:
        """Store the registration and have its event published, atomically."""
        await retry_on_conflict(
            lambda: self._record_registration_once(event),
            attempts=ATTEMPTS,
            what=f"record registration of {event.user_id}",
        )

    async def _record_registration_once(self, event: UserRegistered) -> None:
        key = registration_key(event.user_id)
        entry = await self._read_or_create(key, Registration(user_id=event.user_id))
        registration = Registration.model_validate(event.model_dump(exclude={"event_type"}))
        operations = [guarded_upsert(key, registration, entry), outbox_projection(key, event)]
        await self._dapr.transact_state(self._store, operations)

    async def forget(self, user_id: str, session_ids: list[str]) -> int:
        """Delete the user's registration and the records of ``session_ids`` the user owns, in
        one transaction; how many records were deleted."""
        keys = [session_key(session_id) for session_id in session_ids]
        entries = await self._dapr.bulk_get_state(self._store, keys) if keys else []
        owned = [
            key
            for key, entry in zip(keys, entries, strict=True)
            if (record := _record(entry)) is not None and record.user_id == user_id
        ]
        registration = await self._dapr.get_state(self._store, registration_key(user_id))
        doomed = owned + ([registration_key(user_id)] if registration is not None else [])
        if doomed:
            operations = [
                StateOperation(operation="delete", request=StateWrite(key=key)) for key in doomed
            ]
            await self._dapr.transact_state(self._store, operations)
        return len(doomed)

    async def _read_or_create(
        self, key: str, empty: BaseModel, known: SessionRead | None = None
    ) -> StateEntry:
        """The record at ``key`` (as ``known`` read it, else read now), created as ``empty``
        first when missing (see ``guarded``)."""
        entry = known.entry if known is not None else await self._dapr.get_state(self._store, key)
        if await create_missing(self._dapr, self._store, {key: empty}, {key: entry}):
            entry = await self._dapr.get_state(self._store, key)
        if entry is None:
            raise ConflictError(f"{key} vanished after it was created")
        return entry


def _record(entry: StateEntry | None) -> SessionRecord | None:
    return None if entry is None else SessionRecord.model_validate(entry.value)
