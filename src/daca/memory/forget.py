"""Forgetting: everything stored for a user, or one of their facts.

``forget_user`` finds every record of the user from what the user's own records name: the
sessions of the turns in the user's log and pending turns, each session's head and pages, the
idempotency marker of every turn those pages hold, the user's log pages, facts, pending turns and
metadata. It deletes them in transactions of ``DELETE_BATCH`` operations. A session belongs to
the user who started it (the chat service enforces it), so a session of the user holds only the
user's turns. A summary in flight when the user is forgotten finds its turns no longer pending
and is discarded (``daca.memory.summaries``). A turn delivered while the deletion runs can
survive it; a second ``DELETE`` removes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from daca.dapr.client import DaprClient
from daca.dapr.guarded import guarded_write
from daca.dapr.models import StateOperation, StateWrite
from daca.dapr.retry import retry_on_conflict
from daca.memory import keys
from daca.memory.facts import without_fact
from daca.memory.records import FactBook, HistoryPage, LogHead, LogPage, PendingTurns, SessionHead
from daca.memory.statekit import forget_cached, parse

logger = logging.getLogger(__name__)

DELETE_BATCH = 100


async def _log_turn_sessions(
    client: DaprClient, store: str, user_id: str, head: LogHead | None
) -> set[str]:
    """The sessions of the turns in the user's log (every page up to the head, and the one the
    next turn goes to, which an interrupted append may have created)."""
    if head is None:
        return set()
    numbers = range(head.count // head.page_size + 1)
    pages = await client.bulk_get_state(store, [keys.log_page_key(user_id, n) for n in numbers])
    return {t.session_id for entry in pages for t in (parse(LogPage, entry) or LogPage()).turns}


async def _session_keys(client: DaprClient, store: str, session_ids: Iterable[str]) -> list[str]:
    """The head, pages and turn markers of each session."""
    found: list[str] = []
    for session_id in sorted(session_ids):
        head = parse(SessionHead, await client.get_state(store, keys.head_key(session_id)))
        if head is None:
            continue
        page_keys = [keys.page_key(session_id, n) for n in range(head.tail_page + 1)]
        pages = await client.bulk_get_state(store, page_keys)
        turn_ids = {
            i for entry in pages for i in (parse(HistoryPage, entry) or HistoryPage()).turn_ids
        }
        found += [keys.head_key(session_id), *page_keys]
        found += [keys.marker_key(session_id, turn_id) for turn_id in sorted(turn_ids)]
    return found


async def forget_user(client: DaprClient, store: str, user_id: str) -> tuple[list[str], int]:
    """Delete every record of ``user_id``; the user's sessions, and how many keys were named."""
    user_keys = [keys.user_key(user_id), keys.pending_key(user_id), keys.facts_key(user_id)]
    _, pending_entry, _, head_entry = await client.bulk_get_state(
        store, [*user_keys, keys.log_head_key(user_id)]
    )
    head = parse(LogHead, head_entry)
    pending = parse(PendingTurns, pending_entry) or PendingTurns()
    sessions = await _log_turn_sessions(client, store, user_id, head)
    sessions |= {t.session_id for t in pending.turns}
    log_keys = [keys.log_head_key(user_id)]
    if head is not None:
        log_keys += [keys.log_page_key(user_id, n) for n in range(head.count // head.page_size + 1)]
    doomed = [*await _session_keys(client, store, sessions), *log_keys, *user_keys]
    operations = [StateOperation(operation="delete", request=StateWrite(key=k)) for k in doomed]
    for start in range(0, len(operations), DELETE_BATCH):
        await client.transact_state(store, operations[start : start + DELETE_BATCH])
    forget_cached(doomed)
    logger.info("forgot user %s: %d sessions, %d keys", user_id, len(sessions), len(doomed))
    return sorted(sessions), len(doomed)


async def delete_fact(
    client: DaprClient, store: str, user_id: str, fact_id: str, *, attempts: int
) -> bool:
    """Remove fact ``fact_id`` of ``user_id``; ``False`` when there is no such fact."""

    async def once() -> bool:
        key = keys.facts_key(user_id)
        entry = await client.get_state(store, key)
        book = without_fact(parse(FactBook, entry) or FactBook(), fact_id)
        if book is None or entry is None:
            return False
        await client.save_state(store, [guarded_write(key, book, entry)])
        return True

    return await retry_on_conflict(once, attempts=attempts, what=f"delete fact of {user_id}")
