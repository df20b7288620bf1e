"""A user's turn log: every summarised turn of the user, any session, in fixed pages.

The summarizer moves the turns a summary covers from ``pending:{user}`` into the log in the same
transaction that stores the summary, so the log costs no extra write of its own, and search reads
a bounded tail of it (``SEARCH_TURNS`` turns) plus the pending turns: a search's cost does not
grow with the user's history. An append reads the same tail (``LogTail``) to tell a stored
turn a summary took from one that never reached the pending record. As in the session history,
the head's ``count`` is the truth: a page's turns past it (a transaction that failed half-way on
daprd) are ignored and overwritten.

So a page the head counts as full (a sealed page) never changes while the log lasts: appends
write only the pages from the head's count on. The log's ``log_id``, drawn when its head is
created, tells one log from the next one of the same user (after a forget), and a sealed page
once read is taken from ``statekit.sealed`` by every later read of the same log instead of
being read again: a search or context read asks the store for the newest page only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from daca.contracts.models import ConversationTurn
from daca.dapr.client import DaprClient
from daca.dapr.guarded import guarded_upsert
from daca.dapr.models import StateEntry, StateOperation
from daca.memory import keys
from daca.memory.records import LoggedTurn, LogHead, LogPage, PendingTurns
from daca.memory.statekit import Entries, parse, read_many, seal, sealed

PAGE_SIZE = 100
#: How many of the newest logged turns a search reads (besides the pending ones).
SEARCH_TURNS = 1000


@dataclass(frozen=True)
class LogSnapshot:
    """What an append read: the head, the pages the new turns go to, and the earlier pages
    that hold the newest turns the append may repeat (``not_logged``)."""

    head_entry: StateEntry | None
    head: LogHead
    pages: dict[int, StateEntry | None]
    earlier: dict[int, StateEntry | None]

    def entries(self, user_id: str) -> dict[str, StateEntry | None]:
        read = {keys.log_head_key(user_id): self.head_entry}
        read.update({keys.log_page_key(user_id, n): e for n, e in self.pages.items()})
        return read

    def empty_records(self, user_id: str) -> dict[str, LogHead | LogPage]:
        empty: dict[str, LogHead | LogPage] = {keys.log_head_key(user_id): self.head}
        empty.update({keys.log_page_key(user_id, n): LogPage() for n in self.pages})
        return empty


async def read_for_append(
    client: DaprClient, store: str, user_id: str, head_entry: StateEntry | None, adding: int
) -> LogSnapshot:
    """The pages ``adding`` turns will go to, given the head just read, and the earlier pages
    that hold the newest ``adding`` logged turns: an earlier attempt of the same append that
    failed half-way (on a store without atomic transactions) logged them there."""
    head = parse(LogHead, head_entry) or LogHead(page_size=PAGE_SIZE, log_id=new_log_id())
    first, last = head.count // head.page_size, (head.count + adding - 1) // head.page_size
    since = max(0, head.count - adding) // head.page_size
    numbers = list(range(since, max(first, last) + 1))
    read = await client.bulk_get_state(store, [keys.log_page_key(user_id, n) for n in numbers])
    pages = dict(zip(numbers, read, strict=True))
    return LogSnapshot(
        head_entry,
        head,
        {n: entry for n, entry in pages.items() if n >= first},
        {n: entry for n, entry in pages.items() if n < first},
    )


def append_operations(
    user_id: str,
    snapshot: LogSnapshot,
    turns: list[ConversationTurn],
    *,
    ttl: int | None = None,
    vectors: Mapping[tuple[str, str], str | None] | None = None,
) -> list[StateOperation]:
    """Upserts of the pages with ``turns`` added after the counted ones, then the head. With a
    session ``ttl``, each new turn expires ``ttl`` seconds from now and so does each page written
    (after every turn it holds); the head, a counter, does not expire."""
    head, size = snapshot.head, snapshot.head.page_size
    expires_at = time.time() + ttl if ttl is not None else None
    vectors = vectors or {}
    logged = [
        LoggedTurn(
            **t.model_dump(),
            expires_at=expires_at,
            embedding=vectors.get((t.session_id, t.turn_id)),
        )
        for t in turns
    ]
    operations, position = [], head.count
    for number, entry in snapshot.pages.items():
        kept = (parse(LogPage, entry) or LogPage()).turns[: max(0, position - number * size)]
        room = (number + 1) * size - (number * size + len(kept))
        adding, logged = logged[:room], logged[room:]
        page = LogPage(turns=[*kept, *adding])
        key = keys.log_page_key(user_id, number)
        operations.append(guarded_upsert(key, page, entry, ttl=ttl))
        position += len(adding)
    new_head = head.model_copy(update={"count": position, "log_id": head.log_id or new_log_id()})
    operations.append(guarded_upsert(keys.log_head_key(user_id), new_head, snapshot.head_entry))
    return operations


def not_logged(snapshot: LogSnapshot, turns: list[ConversationTurn]) -> list[ConversationTurn]:
    """``turns`` without those the counted part of the snapshot's pages already holds (a
    commit that failed after writing the log, on a store without atomic transactions)."""
    size, count = snapshot.head.page_size, snapshot.head.count
    logged = {
        (t.session_id, t.turn_id)
        for number, entry in (snapshot.earlier | snapshot.pages).items()
        for t in (parse(LogPage, entry) or LogPage()).turns[: max(0, count - number * size)]
    }
    return [t for t in turns if (t.session_id, t.turn_id) not in logged]


def _searched(head: LogHead | None) -> tuple[int, range]:
    """The index of the first logged turn a search reads, and the pages that hold the turns from
    there on (none for a missing or empty log)."""
    if head is None or not head.count:
        return 0, range(0)
    start = max(0, head.count - SEARCH_TURNS)
    return start, range(start // head.page_size, (head.count - 1) // head.page_size + 1)


def new_log_id() -> str:
    """A fresh ``LogHead.log_id``."""
    return uuid4().hex


def _sealed_in(head: LogHead, number: int) -> str | None:
    """The log's id if page ``number`` of ``head``'s log is full, so it never changes while the
    log lasts; else ``None`` (a head written before logs had ids seals nothing)."""
    return head.log_id if (number + 1) * head.page_size <= head.count else None


def searchable_page_keys(user_id: str, read: MutableMapping[str, StateEntry | None]) -> list[str]:
    """The log pages that ``searchable_turns_from`` needs besides the log head in ``read``,
    but the sealed ones ``read`` holds or that were read before: those are added to ``read``
    (``statekit.sealed``), and later reads take them from there too."""
    head = parse(LogHead, read[keys.log_head_key(user_id)])
    if head is None:
        return []
    wanted = []
    for number in _searched(head)[1]:
        key = keys.log_page_key(user_id, number)
        log_id = _sealed_in(head, number)
        if log_id is not None:
            if key in read:
                continue
            if (known := sealed(key, log_id)) is not None:
                read[key] = known
                continue
        wanted.append(key)
    return wanted


@dataclass(frozen=True)
class LogTail:
    """The newest ``SEARCH_TURNS`` counted turns of a user's log, oldest first, and whether
    they are the whole log."""

    turns: list[LoggedTurn]
    complete: bool

    def may_hold(self, turn: ConversationTurn) -> bool:
        """Whether the log may hold ``turn``: the tail holds it or, where the log holds older
        turns than the tail, it is no newer than the tail's oldest (assumed logged before)."""
        ident = (turn.session_id, turn.turn_id)
        if any((t.session_id, t.turn_id) == ident for t in self.turns):
            return True
        if self.complete:
            return False
        return not self.turns or _instant(turn.timestamp) <= _instant(self.turns[0].timestamp)


def log_tail_from(user_id: str, read: Entries) -> LogTail:
    """The log's tail, from the log head and the ``searchable_page_keys`` entries in ``read``
    (empty and complete for a missing log)."""
    head = parse(LogHead, read[keys.log_head_key(user_id)])
    start, numbers = _searched(head)
    logged: list[LoggedTurn] = []
    if head is not None and numbers:
        for number in numbers:
            counted = head.count - number * head.page_size
            entry = read[keys.log_page_key(user_id, number)]
            page = parse(LogPage, entry) or LogPage()
            logged.extend(page.turns[:counted])
            if entry is not None and (log_id := _sealed_in(head, number)) is not None:
                seal(entry, log_id)
        logged = logged[-(head.count - start) :]
    return LogTail(logged, complete=start == 0)


def searchable_turns_from(user_id: str, read: Entries) -> list[ConversationTurn]:
    """The user's newest ``SEARCH_TURNS`` logged turns that have not expired and the pending
    ones, newest first, from the log head, the pending record and the ``searchable_page_keys``
    entries in ``read``."""
    pending = (parse(PendingTurns, read[keys.pending_key(user_id)]) or PendingTurns()).turns
    logged = log_tail_from(user_id, read).turns
    seen = {(t.session_id, t.turn_id) for t in logged}
    fresh = [t for t in pending if (t.session_id, t.turn_id) not in seen]
    now = time.time()
    live = [t for t in logged if t.expires_at is None or t.expires_at > now]
    return list(reversed([*live, *fresh]))


async def searchable_turns(
    client: DaprClient,
    store: str,
    user_id: str,
    head_entry: StateEntry | None,
    pending_entry: StateEntry | None,
) -> list[ConversationTurn]:
    """``searchable_turns_from``, given the log's head and the pending record just read: one
    bulk read of the pages, none for an empty log."""
    read = {keys.log_head_key(user_id): head_entry, keys.pending_key(user_id): pending_entry}
    read |= await read_many(client, store, searchable_page_keys(user_id, read))
    return searchable_turns_from(user_id, read)


def _instant(timestamp: str) -> datetime:
    """A turn's ISO 8601 timestamp as an aware date-time (one without an offset taken as UTC)."""
    moment = datetime.fromisoformat(timestamp)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
