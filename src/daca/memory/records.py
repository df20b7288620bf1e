"""The records the memory service keeps in the state store (see ``daca.memory.keys``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from daca.contracts.ids import Identifier
from daca.contracts.models import ConversationEntry, ConversationTurn, Fact


class SessionHead(BaseModel):
    """A session's head: how many entries its history holds, in pages of ``page_size``."""

    session_id: Identifier
    entry_count: int = Field(default=0, ge=0)
    page_size: int = Field(ge=2)
    updated_at: str | None = None

    def page_of(self, index: int) -> int:
        """The page number that holds entry ``index``."""
        return index // self.page_size

    @property
    def tail_page(self) -> int:
        """The page the next entry goes to."""
        return self.page_of(self.entry_count)


class HistoryPage(BaseModel):
    """Up to ``page_size`` entries; ``turn_ids[k]`` is the turn of entries ``2k`` and ``2k+1``."""

    entries: list[ConversationEntry] = Field(default_factory=list)
    turn_ids: list[str] = Field(default_factory=list)


class TurnMarker(BaseModel):
    """Records that a turn was appended, and at which entry index.

    ``index`` is ``None`` while the marker is only created, before its turn is appended.
    """

    user_id: Identifier
    index: int | None = Field(default=None, ge=0)


class PendingTurns(BaseModel):
    """A user's turns that are stored in history but not yet covered by the summary."""

    turns: list[ConversationTurn] = Field(default_factory=list)

    def without(self, covered: list[ConversationTurn]) -> PendingTurns:
        """A copy without the ``covered`` turns."""
        done = {_ident(turn) for turn in covered}
        return PendingTurns(turns=[t for t in self.turns if _ident(t) not in done])


class DeadLetters(BaseModel):
    """The most recent dead-lettered CloudEvents, oldest first."""

    events: list[dict[str, Any]] = Field(default_factory=list)


def pending_with(stored: Any, turns: Sequence[ConversationTurn]) -> dict[str, Any]:
    """The stored value of a ``PendingTurns`` record (``None``: none yet) with ``turns`` added
    at the end (a turn already present moves there: each (session, turn id) is kept once).

    The turns already there are copied, not validated: an append only passes them on, and
    parsing them all on every append would cost as much as the record is long (the summarizer,
    which reads them, checks them). Only the record's shape is checked (``ValueError``).
    """
    kept = [] if stored is None else _stored_turns(stored)
    added = {_ident(turn): turn.model_dump(mode="json") for turn in turns}
    others = [turn for turn in kept if (turn["session_id"], turn["turn_id"]) not in added]
    return {"turns": [*others, *added.values()]}


def is_pending(stored: Any, session_id: str, turn_id: str) -> bool:
    """Whether the stored value of a ``PendingTurns`` record holds the turn (``ValueError``
    when it is no such record)."""
    return any(
        (turn["session_id"], turn["turn_id"]) == (session_id, turn_id)
        for turn in _stored_turns(stored)
    )


def _stored_turns(stored: Any) -> list[dict[str, Any]]:
    turns = stored.get("turns") if isinstance(stored, dict) else None
    if not isinstance(turns, list) or not all(
        isinstance(turn, dict) and "session_id" in turn and "turn_id" in turn for turn in turns
    ):
        raise ValueError("not a pending-turns record")
    return turns


def _ident(turn: ConversationTurn) -> tuple[str, str]:
    """The identity of a turn across sessions."""
    return turn.session_id, turn.turn_id


class LogHead(BaseModel):
    """The head of a user's turn log: how many turns it holds, in pages of ``page_size``."""

    count: int = Field(default=0, ge=0)
    page_size: int = Field(default=100, ge=1)


class LoggedTurn(ConversationTurn):
    """A turn in the user's log; ``expires_at`` (epoch seconds) when sessions have a TTL, its
    ``embedding`` (``daca.memory.embeddings.encode``) when embeddings are configured."""

    expires_at: float | None = None
    embedding: str | None = None


class LogPage(BaseModel):
    """Up to ``page_size`` turns of the user's log, oldest first."""

    turns: list[LoggedTurn] = Field(default_factory=list)


class FactBook(BaseModel):
    """A user's facts, oldest first: the current ones and those a newer fact superseded.

    ``next_id`` numbers new facts (``f1``, ``f2``, ...), so an id is never reused, even after
    a fact is deleted.
    """

    next_id: int = Field(default=1, ge=1)
    facts: list[Fact] = Field(default_factory=list)
    #: The embedding of each fact that has one, by fact id.
    vectors: dict[str, str] = Field(default_factory=dict)

    @property
    def current(self) -> list[Fact]:
        """The facts no newer fact supersedes."""
        return [fact for fact in self.facts if fact.superseded_by is None]
