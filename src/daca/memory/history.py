"""Session history: a small head, fixed-size pages and one idempotency marker per turn.

Appending a turn reads a bounded set of keys (head, marker, pending record, the tail page) and
writes them in ONE state transaction, so its cost does not grow with the history:

1. ``turn:{sid}:{turn_id}``    the marker;
2. ``session:{sid}:page:{n}``  the tail page;
3. ``pending:{user_id}``       the user's pending turns for the summarizer;
4. ``session:{sid}``           the head, written last;

every one guarded by the ETag it was read with. A record that does not exist yet (always the
marker of a new turn; the head, a page or the pending record now and then) is first created
empty by a first-write save (``daca.dapr.guarded.create_missing``): inside a transaction,
daprd's Redis store does not honour first-write, so creation must not happen there. The marker
of a new turn is always missing, so it is created before the first read (a redelivery's marker
exists, and that save is refused harmlessly); the read then fetches the head, and after it the
marker, the tail page and the pending record in one bulk call (after: see ``_snapshot``). A
turn of a session under way therefore costs four sidecar calls: create the marker, two reads,
the transaction. The first turn of a session costs two more (create its head and page, read
again).

The head's ``entry_count`` is the single source of truth: readers ignore page entries beyond
it, and a marker counts only if the entry it points at (within ``entry_count``) carries its
turn id. Any ETag conflict fails the transaction (``ERR_STATE_TRANSACTION``) and the append is
retried from a fresh read.

Why this stays safe where a transaction is not atomic (daprd on Redis runs the operations as
Lua scripts inside MULTI/EXEC, isolated but without rollback): a failed transaction may leave
some of its writes applied, but never a head update without its own page, because the head
ETag only matches when nobody else appended since our read. What can be left behind:

* a page with entries past ``entry_count``: invisible to readers, and overwritten by the next
  append. The next writer truncates such a tail only after re-reading the head and finding it
  unchanged, so a concurrent append that committed between our two reads is never overwritten
  (the page ETag covers the window after the page read);
* a marker whose turn is not in the history: not trusted (see above), so the redelivery
  appends the turn and replaces the stale marker with its ETag;
* a pending-turn record that already holds the turn: the turn is kept once per
  (session, turn id), so a retry does not duplicate it. If the event later dead-letters, the
  summary may mention a turn that history lacks; no stored turn is ever lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from daca.contracts.models import ConversationEntry, ConversationHistory, ConversationTurn
from daca.dapr.client import DaprClient
from daca.dapr.guarded import create_missing, guarded_upsert
from daca.dapr.models import StateEntry, StateOperation
from daca.dapr.retry import ConflictError, retry_on_conflict
from daca.memory import keys
from daca.memory.errors import TurnConflictError
from daca.memory.keyedlock import KeyedLocks
from daca.memory.records import HistoryPage, PendingTurns, SessionHead, TurnMarker
from daca.memory.settings import MemorySettings
from daca.memory.statekit import Entries, parse, read_many

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Snapshot:
    """What one append attempt read, with the ETags its writes are guarded by."""

    head_entry: StateEntry | None
    head: SessionHead
    page_entry: StateEntry | None
    page: HistoryPage
    marker_entry: StateEntry | None
    pending_entry: StateEntry | None

    def entries(self, user_id: str, turn: ConversationTurn) -> dict[str, StateEntry | None]:
        """What was read, by key."""
        sid = turn.session_id
        return {
            keys.marker_key(sid, turn.turn_id): self.marker_entry,
            keys.page_key(sid, self.head.tail_page): self.page_entry,
            keys.pending_key(user_id): self.pending_entry,
            keys.head_key(sid): self.head_entry,
        }

    def empty_records(self, user_id: str, turn: ConversationTurn) -> dict[str, BaseModel]:
        """The value each record starts with when it is created before a write."""
        sid = turn.session_id
        return {
            keys.marker_key(sid, turn.turn_id): TurnMarker(user_id=user_id),
            keys.page_key(sid, self.head.tail_page): HistoryPage(),
            keys.pending_key(user_id): PendingTurns(),
            keys.head_key(sid): self.head,
        }

    @property
    def complete(self) -> bool:
        """Whether every record the append writes exists (and carries an ETag)."""
        read = (self.head_entry, self.page_entry, self.marker_entry, self.pending_entry)
        return all(entry is not None for entry in read)


class HistoryStore:
    """Appends turns to, and reads, paged session histories."""

    def __init__(
        self,
        client: DaprClient,
        settings: MemorySettings,
        on_conflict: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._on_conflict = on_conflict
        self._store = settings.state_store
        self._page_size = settings.page_size
        self._attempts = settings.append_max_attempts
        self._ttl = settings.session_ttl_seconds
        self._user_locks = KeyedLocks()

    async def append(self, user_id: str, turn: ConversationTurn) -> bool:
        """Append ``turn`` once; ``False`` when it was already stored (a redelivery)."""
        async with self._user_locks.hold(user_id):
            marker = {keys.marker_key(turn.session_id, turn.turn_id): TurnMarker(user_id=user_id)}
            await create_missing(self._client, self._store, marker, {})
            return await retry_on_conflict(
                lambda: self._append_once(user_id, turn),
                attempts=self._attempts,
                what=f"append {turn.session_id}/{turn.turn_id}",
                on_conflict=self._on_conflict,
            )

    async def read(self, session_id: str, limit: int | None = None) -> ConversationHistory:
        """The whole history, or its most recent ``limit`` entries: the head, then its pages."""
        head_key = keys.head_key(session_id)
        read = {head_key: await self._client.get_state(self._store, head_key)}
        read |= await read_many(self._client, self._store, self.page_keys(session_id, read, limit))
        return self.history_from(session_id, read, limit)

    @staticmethod
    def page_keys(session_id: str, read: Entries, limit: int | None = None) -> list[str]:
        """The pages that ``history_from`` needs besides the session head in ``read``: those
        holding the most recent ``limit`` entries (all of them with ``None``)."""
        head = parse(SessionHead, read[keys.head_key(session_id)])
        if head is None:
            return []
        return [keys.page_key(head.session_id, n) for n in _window(head, limit)[1]]

    def history_from(
        self, session_id: str, read: Entries, limit: int | None = None
    ) -> ConversationHistory:
        """The history's most recent ``limit`` entries (all with ``None``), from the session
        head and the ``page_keys`` entries in ``read``."""
        head = parse(SessionHead, read[keys.head_key(session_id)])
        if head is None:
            return ConversationHistory(session_id=session_id)
        start, numbers = _window(head, limit)
        entries: list[ConversationEntry] = []
        for number in numbers:
            page = parse(HistoryPage, read[keys.page_key(head.session_id, number)])
            entries.extend(self._visible(head, number, page))
        return ConversationHistory(
            session_id=session_id,
            history=entries[start - numbers.start * head.page_size :],
            total_entries=head.entry_count,
        )

    def _visible(
        self, head: SessionHead, number: int, page: HistoryPage | None
    ) -> list[ConversationEntry]:
        """The entries of page ``number`` that the head accounts for (none when the page has
        expired, with a session TTL, or is missing)."""
        if page is None:
            if self._ttl is None:
                logger.warning("history page %d of session %s is missing", number, head.session_id)
            return []
        return page.entries[: head.entry_count - number * head.page_size]

    async def _append_once(self, user_id: str, turn: ConversationTurn) -> bool:
        """One optimistic attempt: read, check for a duplicate, write one transaction."""
        snapshot = await self._snapshot(user_id, turn)
        if await self._already_stored(turn, snapshot):
            return False
        read, empty = snapshot.entries(user_id, turn), snapshot.empty_records(user_id, turn)
        if await create_missing(self._client, self._store, empty, read):
            snapshot = await self._snapshot(user_id, turn)
            if await self._already_stored(turn, snapshot):
                return False
            if not snapshot.complete:  # e.g. the head moved on to a page nobody created yet
                raise ConflictError("records missing after creating them")
        await self._check_stale_tail(snapshot)
        operations = self._operations(user_id, turn, snapshot)
        await self._client.transact_state(self._store, operations)
        return True

    async def _snapshot(self, user_id: str, turn: ConversationTurn) -> _Snapshot:
        """Read the head, then marker, tail page and pending record in one bulk call.

        The others are read AFTER the head, never with it: a bulk read is no snapshot (daprd
        reads its keys concurrently), and the head's ETag vouches for the records the append
        writes only if they were read after it. A page read before a concurrent append and a
        head read after it would pass the head's guard with a page guard that fails, and on a
        store whose transactions are not atomic that writes a head without its page.
        """
        sid = turn.session_id
        head_entry = await self._client.get_state(self._store, keys.head_key(sid))
        head = parse(SessionHead, head_entry) or SessionHead(
            session_id=sid, page_size=self._page_size
        )
        wanted = [
            keys.marker_key(sid, turn.turn_id),
            keys.page_key(sid, head.tail_page),
            keys.pending_key(user_id),
        ]
        marker_entry, page_entry, pending_entry = await self._client.bulk_get_state(
            self._store, wanted
        )
        page = parse(HistoryPage, page_entry) or HistoryPage()
        return _Snapshot(head_entry, head, page_entry, page, marker_entry, pending_entry)

    async def _already_stored(self, turn: ConversationTurn, snapshot: _Snapshot) -> bool:
        """Whether the marker exists and the entry it points at really holds this turn.

        A stored turn with the same id but other content raises ``TurnConflictError``.
        """
        marker = parse(TurnMarker, snapshot.marker_entry)
        head = snapshot.head
        if marker is None or marker.index is None or marker.index >= head.entry_count:
            return False
        page = snapshot.page
        if head.page_of(marker.index) != head.tail_page:
            key = keys.page_key(turn.session_id, head.page_of(marker.index))
            page = (
                parse(HistoryPage, await self._client.get_state(self._store, key)) or HistoryPage()
            )
        slot = (marker.index % head.page_size) // 2
        if not (slot < len(page.turn_ids) and page.turn_ids[slot] == turn.turn_id):
            return False
        stored = page.entries[2 * slot : 2 * slot + 2]
        if [entry.content for entry in stored] != [turn.user_message, turn.assistant_reply]:
            raise TurnConflictError(turn.session_id, turn.turn_id)
        return True

    async def _check_stale_tail(self, snapshot: _Snapshot) -> None:
        """Refuse to truncate a page tail that a concurrent append may just have committed."""
        if len(snapshot.page.entries) <= self._offset(snapshot.head):
            return
        fresh = await self._client.get_state(self._store, keys.head_key(snapshot.head.session_id))
        before = snapshot.head_entry.etag if snapshot.head_entry else None
        if (fresh.etag if fresh else None) != before:
            raise ConflictError("the session head moved while reading its tail page")

    @staticmethod
    def _offset(head: SessionHead) -> int:
        """How many entries of the tail page the head accounts for."""
        return head.entry_count - head.tail_page * head.page_size

    def _operations(
        self, user_id: str, turn: ConversationTurn, snapshot: _Snapshot
    ) -> list[StateOperation]:
        """The transaction of one append, the head last (every record read with its ETag)."""
        head, sid = snapshot.head, turn.session_id
        marker = TurnMarker(user_id=user_id, index=head.entry_count)
        pending = (parse(PendingTurns, snapshot.pending_entry) or PendingTurns()).with_turn(turn)
        new_head = head.model_copy(
            update={"entry_count": head.entry_count + 2, "updated_at": turn.timestamp}
        )
        writes: list[tuple[str, BaseModel]] = [
            (keys.marker_key(sid, turn.turn_id), marker),
            (keys.page_key(sid, head.tail_page), _next_page(snapshot, turn)),
            (keys.pending_key(user_id), pending),
            (keys.head_key(sid), new_head),
        ]
        read = snapshot.entries(user_id, turn)
        pending_key, ttl = keys.pending_key(user_id), self._ttl
        return [
            guarded_upsert(key, value, read[key], ttl=None if key == pending_key else ttl)
            for key, value in writes
        ]


def _window(head: SessionHead, limit: int | None) -> tuple[int, range]:
    """The index of the first of the most recent ``limit`` entries (all with ``None``), and the
    numbers of the pages that hold them (none when there are none)."""
    start = 0 if limit is None else max(0, head.entry_count - limit)
    if start >= head.entry_count:
        return start, range(0)
    return start, range(head.page_of(start), head.page_of(head.entry_count - 1) + 1)


def _next_page(snapshot: _Snapshot, turn: ConversationTurn) -> HistoryPage:
    """The tail page with ``turn`` appended after the entries the head accounts for."""
    offset = snapshot.head.entry_count - snapshot.head.tail_page * snapshot.head.page_size
    return HistoryPage(
        entries=[*snapshot.page.entries[:offset], *_entries_of(turn)],
        turn_ids=[*snapshot.page.turn_ids[: offset // 2], turn.turn_id],
    )


def _entries_of(turn: ConversationTurn) -> list[ConversationEntry]:
    """The user and assistant entries of a turn."""
    return [
        ConversationEntry(role="user", content=turn.user_message, timestamp=turn.timestamp),
        ConversationEntry(role="assistant", content=turn.assistant_reply, timestamp=turn.timestamp),
    ]
