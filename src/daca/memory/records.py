"""The records the memory service keeps in the state store (see ``daca.memory.keys``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    """Up to ``page_size`` entries; ``turn_ids[k]`` is the turn of entries ``2k`` and ``2k+1``.
    Frozen, as the log's pages are: a parse is shared by the reads of an unchanged page
    (``daca.memory.statekit.parse``), so its lists are never changed in place either."""

    model_config = ConfigDict(frozen=True)

    entries: list[ConversationEntry] = Field(default_factory=list)
    turn_ids: list[str] = Field(default_factory=list)


class TurnMarker(BaseModel):
    """Records that a turn was appended, and at which entry index.

    ``index`` is ``None`` while the marker is only created, before its turn is appended.
    """

    user_id: Identifier
    index: int | None = Field(default=None, ge=0)


#: The most turns, and the most text (characters of their messages), a user's pending record
#: keeps. Every append rewrites the record, and a writer of summaries that stays down lets it
#: grow: unbounded, it would make each append slower, then larger than the state store takes,
#: and the appends (the turns themselves) would fail. Past either bound an append drops pending
#: turns (see ``pending_with``): they stay in their sessions' history, but no summary or search
#: covers them.
MAX_PENDING_TURNS = 1000
MAX_PENDING_CHARS = 256 * 1024


def summary_batch_size(sizes: Sequence[int], max_turns: int) -> int:
    """How many of the oldest pending turns (their sizes in characters, oldest first) the next
    summary covers: at most ``max_turns``, and at most half of both bounds of the record (at
    least one). ``pending_with`` never drops these, so a summary under way still finds them."""
    limit = min(max_turns, MAX_PENDING_TURNS // 2)
    count, chars = 0, 0
    for size in sizes[:limit]:
        chars += size
        if count and chars > MAX_PENDING_CHARS // 2:
            break
        count += 1
    return count


class PendingTurns(BaseModel):
    """A user's turns that are stored in history but not yet covered by the summary (frozen,
    as ``HistoryPage``: a context read parses the record once for the metadata and the search)."""

    model_config = ConfigDict(frozen=True)

    turns: list[ConversationTurn] = Field(default_factory=list)

    def without(self, covered: list[ConversationTurn]) -> PendingTurns:
        """A copy without the ``covered`` turns."""
        done = {_ident(turn) for turn in covered}
        return PendingTurns(turns=[t for t in self.turns if _ident(t) not in done])


class DeadLetters(BaseModel):
    """The most recent dead-lettered CloudEvents, oldest first."""

    events: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    """A pending record's new value, and how many of its turns it dropped."""

    value: dict[str, Any]
    dropped: int


def pending_with(
    stored: Any, turns: Sequence[ConversationTurn], summary_batch: int
) -> PendingUpdate:
    """The stored value of a ``PendingTurns`` record (``None``: none yet) with ``turns`` added
    at the end (a turn already present moves there: each (session, turn id) is kept once).

    Past ``MAX_PENDING_TURNS`` or ``MAX_PENDING_CHARS`` the record keeps the turns the next
    summary covers (``summary_batch_size`` with ``summary_batch``, its most turns), the added
    ones, and as many of the newest others as fit: the ones between are dropped. Dropping the
    oldest instead would take turns from under a summary being written, which would then be
    discarded, again and again while the user keeps talking.

    The turns already there are copied, not validated: an append only passes them on, and
    parsing them all on every append would cost as much as the record is long (the summarizer,
    which reads them, checks them). Only the record's shape is checked (``ValueError``).
    """
    kept = [] if stored is None else _stored_turns(stored)
    added = {_ident(turn): turn.model_dump(mode="json") for turn in turns}
    others = [turn for turn in kept if (turn["session_id"], turn["turn_id"]) not in added]
    sizes = [_chars(turn) for turn in others]
    oldest = summary_batch_size(sizes, summary_batch)
    turns_left = MAX_PENDING_TURNS - len(added) - oldest
    chars_left = MAX_PENDING_CHARS - sum(map(_chars, added.values())) - sum(sizes[:oldest])
    start = len(others)
    while start > oldest and turns_left > 0 and chars_left >= sizes[start - 1]:
        start, turns_left, chars_left = start - 1, turns_left - 1, chars_left - sizes[start - 1]
    value = {"turns": [*others[:oldest], *others[start:], *added.values()]}
    return PendingUpdate(value, dropped=start - oldest)


def _chars(turn: dict[str, Any]) -> int:
    """The characters of a stored turn's messages."""
    return sum(
        len(text)
        for text in (turn.get("user_message"), turn.get("assistant_reply"))
        if isinstance(text, str)
    )


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
    """The head of a user's turn log: how many turns it holds, in pages of ``page_size``, and
    the log's id (``None`` in a head written before logs had ids; the next append sets one)."""

    count: int = Field(default=0, ge=0)
    page_size: int = Field(default=100, ge=1)
    log_id: Identifier | None = None


class LoggedTurn(ConversationTurn):
    """A turn in the user's log; ``expires_at`` (epoch seconds) when sessions have a TTL, its
    ``embedding`` (``daca.memory.embeddings.encode``) when embeddings are configured."""

    expires_at: float | None = None
    embedding: str | None = None


class LogPage(BaseModel):
    """Up to ``page_size`` turns of the user's log, oldest first (frozen, as ``HistoryPage``)."""

    model_config = ConfigDict(frozen=True)

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
