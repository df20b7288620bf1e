"""Session history: a small head, fixed-size pages and one idempotency marker per turn.

Turns are appended in batches (``append_many``; ``append`` is a batch of one). A batch reads a
bounded set of keys per session (head, markers, the pages it writes, the users' pending
records) and writes them in ONE state transaction, so its cost grows with neither the history
nor, in calls, the batch:

1. ``turn:{sid}:{turn_id}``    each new turn's marker;
2. ``session:{sid}:page:{n}``  the pages the new entries go to (the tail page, and the next
                                ones when the batch crosses a page boundary);
3. ``pending:{user_id}``       each user's pending turns for the summarizer (bounded: see
                                ``records.pending_with``);
4. ``session:{sid}``           each session head, written last;

every one guarded by the ETag it was read with. A record that does not exist yet (always the
marker of a new turn; a head, a page or a pending record now and then) is first created empty
by a first-write save (``daca.dapr.guarded.create_missing``): inside a transaction, daprd's
Redis store does not honour first-write, so creation must not happen there. The markers of new
turns are always missing, so they are created before the first read (a redelivery's marker
exists, and its save is refused harmlessly); the read then fetches the heads, and after them
the markers, pages and pending records in one bulk call (after: see ``_plan``). A batch of
sessions under way therefore costs four sidecar calls however many turns it holds: create the
markers, two reads, the transaction. A batch that starts a session, or a page, costs two more
(create its records, read again). A batch of long turns is appended in rounds
(``ROUND_CHARS``), and a round whose writes would make a large request body is written as
several transactions, each holding whole users (``MAX_TRANSACTION_BYTES``).

The head's ``entry_count`` is the single source of truth: readers ignore page entries beyond
it, and a marker counts only if the entry it points at (within ``entry_count``) carries its
turn id. Any ETag conflict fails the transaction (``ERR_STATE_TRANSACTION``) and the batch is
retried from a fresh read; turns a committed part already stored are then found stored.

Why this stays safe where a transaction is not atomic (daprd on Redis runs the operations as
Lua scripts inside MULTI/EXEC, isolated but without rollback): a failed transaction may leave
some of its writes applied, but never a head update without its own pages, because a head's
ETag only matches when nobody else appended to that session since our read, and its pages
were read after it. What can be left behind:

* a page with entries past ``entry_count``: invisible to readers, and overwritten by the next
  append. The next writer overwrites such entries only after re-reading the head and finding
  it unchanged, so a concurrent append that committed between our two reads is never
  overwritten (the page ETags cover the window after the page read);
* a marker whose turn is not in the history: not trusted (see above), so the redelivery
  appends the turn and replaces the stale marker with its ETag;
* a pending-turn record that already holds the turn: the turn is kept once per
  (session, turn id), so a retry does not duplicate it. If the event later dead-letters, the
  summary may mention a turn that history lacks; no stored turn is ever lost;
* a head written without its user's pending record: the record is shared by the user's
  sessions, so its guard can fail (another replica appended another of the user's sessions)
  where the head's holds. Whoever next appends the turn (the retry, or the event's redelivery
  after a crash or a retry that gave up) finds it stored, its user's pending record without
  it, and the user's turn log without it too (a summary moves the turns it covers from the
  record to the log in one transaction), and writes it to the record (``_plan``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from daca.contracts.models import ConversationEntry, ConversationHistory, ConversationTurn
from daca.dapr.client import DaprClient
from daca.dapr.guarded import Value, create_missing, guarded_upsert
from daca.dapr.models import StateEntry, StateOperation
from daca.dapr.retry import ConflictError, retry_on_conflict
from daca.memory import keys
from daca.memory.errors import CorruptRecordError, TurnConflictError
from daca.memory.keyedlock import KeyedLocks
from daca.memory.records import (
    HistoryPage,
    PendingTurns,
    SessionHead,
    TurnMarker,
    is_pending,
    pending_with,
)
from daca.memory.settings import MemorySettings
from daca.memory.statekit import Entries, parse, read_many
from daca.memory.userlog import log_tail_from, searchable_page_keys

logger = logging.getLogger(__name__)

#: A turn's identity: (session id, turn id).
Ident = tuple[str, str]

#: The largest transaction body a batch writes at once (estimated from its values); daprd
#: refuses request bodies over 4 MiB by default. A single user's writes are never split.
MAX_TRANSACTION_BYTES = 1 << 20
#: The most text (characters of the turns' messages) one round of a batch appends: each turn
#: is written twice (its page, its user's pending record), beside the pages' earlier entries.
ROUND_CHARS = 256 * 1024


@dataclass(frozen=True, slots=True)
class UserTurn:
    """A turn to append, and the user it belongs to."""

    user_id: str
    turn: ConversationTurn

    @property
    def ident(self) -> Ident:
        return self.turn.session_id, self.turn.turn_id


@dataclass
class _Session:
    """One session of a batch: its head as read, and the turns of the batch to append to it."""

    head_entry: StateEntry | None
    head: SessionHead
    new: list[UserTurn] = field(default_factory=list)
    #: Turns found stored that neither their user's pending record nor turn log holds: they
    #: are written to the record again (see ``_plan``).
    recovered: list[UserTurn] = field(default_factory=list)

    @property
    def pending(self) -> list[UserTurn]:
        """The turns this attempt adds to their users' pending records."""
        return [*self.recovered, *self.new]

    def pages(self, turns: int) -> range:
        """The pages that ``turns`` more turns are written to (none for none)."""
        if turns == 0:
            return range(0)
        last = self.head.entry_count + 2 * turns - 1
        return range(self.head.tail_page, self.head.page_of(last) + 1)

    @property
    def offset(self) -> int:
        """How many entries of the tail page the head accounts for."""
        return self.head.entry_count - self.head.tail_page * self.head.page_size


@dataclass
class _Plan:
    """What one attempt read, and what it appends to which session."""

    read: dict[str, StateEntry | None]
    sessions: dict[str, _Session]
    _pages: dict[str, HistoryPage | None] = field(default_factory=dict)

    def page(self, key: str) -> HistoryPage | None:
        """The page read under ``key``, parsed once however often it is asked for."""
        if key not in self._pages:
            self._pages[key] = parse(HistoryPage, self.read[key])
        return self._pages[key]

    def missing(self) -> dict[str, BaseModel]:
        """The records the writes need that do not exist yet, with their empty values."""
        empty: dict[str, BaseModel] = {}

        def absent(key: str) -> bool:
            return key not in empty and self.read.get(key) is None

        for sid, session in self.sessions.items():
            for item in session.pending:
                if absent(key := keys.pending_key(item.user_id)):
                    empty[key] = PendingTurns()
            if not session.new:
                continue
            if absent(key := keys.head_key(sid)):
                empty[key] = session.head
            for number in session.pages(len(session.new)):
                if absent(key := keys.page_key(sid, number)):
                    empty[key] = HistoryPage()
            for item in session.new:
                if absent(key := keys.marker_key(*item.ident)):
                    empty[key] = TurnMarker(user_id=item.user_id)
        return empty

    def overwritten(self) -> list[str]:
        """The sessions whose written pages hold entries their head does not account for."""
        moved = []
        for sid, session in self.sessions.items():
            for number in session.pages(len(session.new)):
                page = self.page(keys.page_key(sid, number))
                kept = session.offset if number == session.head.tail_page else 0
                if page is not None and len(page.entries) > kept:
                    moved.append(sid)
                    break
        return moved


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
        self._summary_batch = settings.summary_max_batch
        self._user_locks = KeyedLocks()

    async def append(self, user_id: str, turn: ConversationTurn) -> bool:
        """Append ``turn`` once; ``False`` when it was already stored (a redelivery)."""
        return (await self.append_many([UserTurn(user_id, turn)]))[0]

    async def append_many(self, batch: Sequence[UserTurn]) -> list[bool]:
        """Append each turn of ``batch`` once, in order per session; for each, whether it was
        stored now (``False``: it was already, a redelivery or a repeat within the batch).

        A turn whose id is stored with other content raises ``TurnConflictError`` (the batch
        may then be partly stored): the caller appends its turns one by one to find which.
        """
        stored: set[Ident] = set()
        async with AsyncExitStack() as stack:
            for user_id in sorted({item.user_id for item in batch}):
                await stack.enter_async_context(self._user_locks.hold(user_id))
            for part in _rounds(batch):
                await self._append_round(part, stored)
        seen: set[Ident] = set()
        results = []
        for item in batch:
            results.append(item.ident in stored and item.ident not in seen)
            seen.add(item.ident)
        return results

    async def _append_round(self, batch: Sequence[UserTurn], stored: set[Ident]) -> None:
        """Append the turns of one round (their users' locks held)."""
        markers: dict[str, BaseModel] = {
            keys.marker_key(*item.ident): TurnMarker(user_id=item.user_id) for item in batch
        }
        await create_missing(self._client, self._store, markers, {})
        first = batch[0].turn
        more = f" and {len(batch) - 1} more" if len(batch) > 1 else ""
        await retry_on_conflict(
            lambda: self._append_once(batch, stored),
            attempts=self._attempts,
            what=f"append {first.session_id}/{first.turn_id}{more}",
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

    async def _append_once(self, batch: Sequence[UserTurn], stored: set[Ident]) -> None:
        """One optimistic attempt: read, set duplicates aside, write the transactions (adding
        what each stored to ``stored``)."""
        plan = await self._plan(batch)
        if await create_missing(self._client, self._store, plan.missing(), plan.read):
            plan = await self._plan(batch)
            if plan.missing():  # e.g. a head moved on to a page nobody created yet
                raise ConflictError("records missing after creating them")
        await self._check_overwrites(plan)
        for operations, appended in self._transactions(plan):
            await self._client.transact_state(self._store, operations)
            stored.update(appended)

    async def _plan(self, batch: Sequence[UserTurn]) -> _Plan:
        """Read the heads, then the markers, the pages to write and the pending records in
        one bulk call, and sort the batch's turns into new ones and duplicates.

        The others are read AFTER the heads, never with them: a bulk read is no snapshot
        (daprd reads its keys concurrently), and a head's ETag vouches for the records the
        append writes only if they were read after it. A page read before a concurrent append
        and a head read after it would pass the head's guard with a page guard that fails, and
        on a store whose transactions are not atomic that writes a head without its page.

        On such a store a transaction can also fail on a pending record and still write the
        heads of other sessions (another replica wrote the record meanwhile): the retry, or a
        redelivery, finds those turns stored. A turn found stored that its user's pending
        record lacks, and that the user's turn log lacks too, read after the record (see
        ``_unlogged``), never reached a summary: it is added to the record again.
        """
        counts = Counter(item.turn.session_id for item in batch)
        read = await read_many(self._client, self._store, map(keys.head_key, counts))
        sessions = {sid: self._session(sid, read[keys.head_key(sid)]) for sid in counts}
        wanted = [keys.marker_key(*item.ident) for item in batch]
        for sid, session in sessions.items():
            wanted.extend(keys.page_key(sid, number) for number in session.pages(counts[sid]))
        wanted.extend(map(keys.pending_key, dict.fromkeys(item.user_id for item in batch)))
        read |= await read_many(self._client, self._store, wanted)
        plan = _Plan(read, sessions)
        firsts: dict[Ident, ConversationTurn] = {}
        unpending: list[UserTurn] = []
        for item in batch:
            if item.ident in firsts:  # the same turn twice in one batch
                _check_same(firsts[item.ident], item.turn)
                continue
            firsts[item.ident] = item.turn
            session = sessions[item.turn.session_id]
            if not await self._already_stored(item.turn, session.head, plan):
                session.new.append(item)
            elif _lacks(plan, item):
                unpending.append(item)
        recovered = await self._unlogged(unpending)
        for item in recovered:
            sessions[item.turn.session_id].recovered.append(item)
        if recovered:
            logger.info(
                "%d stored turns had reached neither pending records nor summaries; adding them",
                len(recovered),
            )
        return plan

    async def _unlogged(self, items: list[UserTurn]) -> list[UserTurn]:
        """Of ``items``, stored turns that their users' pending records lacked as just read,
        those that no summary took either: their users' turn logs do not hold them.

        The logs are read after the records: a summary that took a turn from a record put it
        in the log in the same transaction, so a record read without the turn is followed by a
        log read with it. A search's tail of the log is read (``userlog.LogTail``); a turn
        older than that tail is taken as logged before it (a replay of old events).
        """
        if not items:
            return []
        users = list(dict.fromkeys(item.user_id for item in items))
        read = await read_many(self._client, self._store, map(keys.log_head_key, users))
        pages = [key for user in users for key in searchable_page_keys(user, read)]
        read |= await read_many(self._client, self._store, pages)
        tails = {user: log_tail_from(user, read) for user in users}
        return [item for item in items if not tails[item.user_id].may_hold(item.turn)]

    def _session(self, session_id: str, entry: StateEntry | None) -> _Session:
        head = parse(SessionHead, entry) or SessionHead(
            session_id=session_id, page_size=self._page_size
        )
        return _Session(entry, head)

    async def _already_stored(self, turn: ConversationTurn, head: SessionHead, plan: _Plan) -> bool:
        """Whether the marker exists and the entry it points at really holds this turn.

        A stored turn with the same id but other content raises ``TurnConflictError``.
        """
        marker = parse(TurnMarker, plan.read[keys.marker_key(turn.session_id, turn.turn_id)])
        if marker is None or marker.index is None or marker.index >= head.entry_count:
            return False
        key = keys.page_key(turn.session_id, head.page_of(marker.index))
        if key not in plan.read:  # an earlier page: a redelivery of an older turn
            plan.read[key] = await self._client.get_state(self._store, key)
        page = plan.page(key) or HistoryPage()
        slot = (marker.index % head.page_size) // 2
        if not (slot < len(page.turn_ids) and page.turn_ids[slot] == turn.turn_id):
            return False
        stored = page.entries[2 * slot : 2 * slot + 2]
        if [entry.content for entry in stored] != [turn.user_message, turn.assistant_reply]:
            raise TurnConflictError(turn.session_id, turn.turn_id)
        return True

    async def _check_overwrites(self, plan: _Plan) -> None:
        """Refuse to overwrite page entries that a concurrent append may just have committed:
        where a page holds entries its head does not account for, the head must not have
        moved since it was read."""
        moved = plan.overwritten()
        if not moved:
            return
        fresh = await read_many(self._client, self._store, map(keys.head_key, moved))
        for sid in moved:
            now, before = fresh[keys.head_key(sid)], plan.sessions[sid].head_entry
            if (now.etag if now else None) != (before.etag if before else None):
                raise ConflictError(f"the head of session {sid} moved while reading its pages")

    def _transactions(self, plan: _Plan) -> list[tuple[list[StateOperation], set[Ident]]]:
        """The transactions of one attempt, and the turns each appends: whole users in each,
        as many as fit in ``MAX_TRANSACTION_BYTES``, each head after every other write."""
        by_user: dict[str, list[str]] = {}
        for sid, session in plan.sessions.items():
            if pending := session.pending:
                by_user.setdefault(pending[0].user_id, []).append(sid)
        transactions: list[tuple[list[StateOperation], set[Ident]]] = []
        writes: list[StateOperation] = []
        heads: list[StateOperation] = []
        appended: set[Ident] = set()
        size, sizing = 0, len(by_user) > 1  # one user's writes go in one transaction anyway
        for sids in by_user.values():
            unit = self._user_writes(plan, sids)
            unit_size = _size(unit) if sizing else 0
            if writes and size + unit_size > MAX_TRANSACTION_BYTES:
                transactions.append(([*writes, *heads], appended))
                writes, heads, appended, size = [], [], set(), 0
            writes.extend(unit[0])
            heads.extend(unit[1])
            appended.update(item.ident for sid in sids for item in plan.sessions[sid].pending)
            size += unit_size
        if writes:
            transactions.append(([*writes, *heads], appended))
        return transactions

    def _user_writes(
        self, plan: _Plan, sids: list[str]
    ) -> tuple[list[StateOperation], list[StateOperation]]:
        """The writes that append the new turns of sessions ``sids`` (those of one user), and
        the heads' writes, each guarded by the ETag it was read with."""
        writes: list[tuple[str, Value, int | None]] = []
        head_writes: list[tuple[str, Value, int | None]] = []
        pending: dict[str, list[ConversationTurn]] = {}
        for sid in sids:
            session = plan.sessions[sid]
            head = session.head
            for item in session.recovered:
                pending.setdefault(item.user_id, []).append(item.turn)
            if not session.new:
                continue
            for n, item in enumerate(session.new):
                marker = TurnMarker(user_id=item.user_id, index=head.entry_count + 2 * n)
                writes.append((keys.marker_key(*item.ident), marker, self._ttl))
                pending.setdefault(item.user_id, []).append(item.turn)
            for number, page in _next_pages(session, plan):
                writes.append((keys.page_key(sid, number), page, self._ttl))
            new_head = head.model_copy(
                update={
                    "entry_count": head.entry_count + 2 * len(session.new),
                    "updated_at": session.new[-1].turn.timestamp,
                }
            )
            head_writes.append((keys.head_key(sid), new_head, self._ttl))
        for user_id, turns in pending.items():
            key = keys.pending_key(user_id)
            writes.append((key, _pending_with(plan.read[key], turns, self._summary_batch), None))
        return _guarded(writes, plan.read), _guarded(head_writes, plan.read)


def _size(unit: tuple[list[StateOperation], list[StateOperation]]) -> int:
    """The bytes of the values a user's writes carry, as sent."""
    return sum(len(to_json(op.request.value)) for op in [*unit[0], *unit[1]])


def _guarded(writes: list[tuple[str, Value, int | None]], read: Entries) -> list[StateOperation]:
    """Each (key, value, ttl) as an upsert guarded by the ETag the key was read with."""
    return [guarded_upsert(key, value, read[key], ttl=ttl) for key, value, ttl in writes]


def _lacks(plan: _Plan, item: UserTurn) -> bool:
    """Whether the user's pending record, as read, is missing or does not hold the turn (an
    unreadable one cannot tell: it is reported by an append of a new turn, not repaired)."""
    entry = plan.read[keys.pending_key(item.user_id)]
    try:
        return entry is None or not is_pending(entry.value, *item.ident)
    except ValueError:
        return False


def _pending_with(
    entry: StateEntry | None, turns: list[ConversationTurn], summary_batch: int
) -> dict[str, Any]:
    """The user's pending record with ``turns`` added (``records.pending_with``)."""
    try:
        update = pending_with(entry.value if entry is not None else None, turns, summary_batch)
    except ValueError:
        assert entry is not None
        logger.error("stored record %r is not a valid PendingTurns", entry.key)
        raise CorruptRecordError(entry.key, PendingTurns.__name__) from None
    if update.dropped and entry is not None:
        logger.warning(
            "%s holds the most pending turns it keeps (is the summary model down?): %d turns "
            "after those the next summary covers are dropped; they stay in history, without "
            "summary or search",
            entry.key, update.dropped,
        )  # fmt: skip
    return update.value


def _rounds(batch: Sequence[UserTurn]) -> list[Sequence[UserTurn]]:
    """The batch in rounds of consecutive turns holding at most ``ROUND_CHARS`` characters of
    text (at least one turn each), so that one round's transactions stay small."""
    rounds: list[Sequence[UserTurn]] = []
    start, chars = 0, 0
    for index, item in enumerate(batch):
        size = len(item.turn.user_message) + len(item.turn.assistant_reply)
        if index > start and chars + size > ROUND_CHARS:
            rounds.append(batch[start:index])
            start, chars = index, 0
        chars += size
    if start < len(batch):
        rounds.append(batch[start:])
    return rounds


def _check_same(first: ConversationTurn, again: ConversationTurn) -> None:
    """A turn given twice must say the same both times."""
    said = (first.user_message, first.assistant_reply)
    if (again.user_message, again.assistant_reply) != said:
        raise TurnConflictError(again.session_id, again.turn_id)


def _window(head: SessionHead, limit: int | None) -> tuple[int, range]:
    """The index of the first of the most recent ``limit`` entries (all with ``None``), and the
    numbers of the pages that hold them (none when there are none)."""
    start = 0 if limit is None else max(0, head.entry_count - limit)
    if start >= head.entry_count:
        return start, range(0)
    return start, range(head.page_of(start), head.page_of(head.entry_count - 1) + 1)


def _next_pages(session: _Session, plan: _Plan) -> list[tuple[int, HistoryPage]]:
    """The pages the session's new turns go to: the tail page's entries that the head accounts
    for, then the new turns' entries, in pages of ``page_size``."""
    head, size = session.head, session.head.page_size
    tail = plan.page(keys.page_key(head.session_id, head.tail_page)) or HistoryPage()
    entries = [*tail.entries[: session.offset]]
    turn_ids = [*tail.turn_ids[: session.offset // 2]]
    for item in session.new:
        entries.extend(_entries_of(item.turn))
        turn_ids.append(item.turn.turn_id)
    return [
        (
            number,
            HistoryPage(
                entries=entries[k * size : (k + 1) * size],
                turn_ids=turn_ids[k * size // 2 : (k + 1) * size // 2],
            ),
        )
        for k, number in enumerate(session.pages(len(session.new)))
    ]


def _entries_of(turn: ConversationTurn) -> list[ConversationEntry]:
    """The user and assistant entries of a turn."""
    return [
        ConversationEntry(role="user", content=turn.user_message, timestamp=turn.timestamp),
        ConversationEntry(role="assistant", content=turn.assistant_reply, timestamp=turn.timestamp),
    ]
