"""What the chat reads for one reply, in one call: ``GET /memories/{user_id}/context``.

The chat needs the user's metadata, the session's most recent entries and the memories of the
user's other sessions that match the message. As three invocations they cost three trips
through both sidecars; as one, they share the state reads, which are at most TWO bulk reads
whatever the histories hold, and usually one:

1. every head-like record, each key once: the user's metadata and pending turns, the session
   head and, when searching, the log head and the facts; and after them the pages the last
   read of the same user and session (searching or not) needed (``statekit.ReadHints``);
2. the pages those heads point to that the first read did not bring: the session's most recent
   pages and the log's newest ones (a full page of the log read before is not read again,
   see ``daca.memory.userlog``). Skipped when none is missing, as when the heads have not
   moved onto a new page since the last read.

On the runtime's Redis store a bulk read is one pipeline, read in key order, so the pages of
the first read are read after their heads, as they are by a second read; a page newer than
its head is read as far as the head counts.

Each part is computed from those entries by the same pieces that its own route's read is built
of (``daca.memory.users``, ``HistoryStore``, ``daca.memory.recall``). ``relevant`` is empty
without a query or with ``k == 0``, and then neither the log nor the facts are read.

A part whose read fails is left at its default and named in ``unavailable`` (a warning is
logged), so the chat still gets the others. With shared reads, a failure of the first read
makes all three parts unavailable; a failure of the page read makes ``recent`` and
``relevant`` unavailable, while ``metadata``, already read, is answered.
"""

from __future__ import annotations

import logging

from daca.contracts.models import MemoryContext, SearchResult
from daca.dapr.errors import DaprClientError
from daca.memory import keys
from daca.memory.container import MemoryServices
from daca.memory.recall import rank_memories, search_keys
from daca.memory.statekit import read_many
from daca.memory.userlog import searchable_page_keys
from daca.memory.users import metadata_from, record_keys

logger = logging.getLogger(__name__)


async def read_context(
    services: MemoryServices, user_id: str, session_id: str, limit: int, query: str, k: int
) -> MemoryContext:
    """The three parts for a reply to ``query`` in ``session_id``; pending turns get summarised."""
    client, store, history = services.client, services.settings.state_store, services.history
    searching = bool(query.strip() and k)
    heads = [*record_keys(user_id), keys.head_key(session_id)]
    if searching:
        heads += search_keys(user_id)
    subject = (user_id, session_id, "search" if searching else "")
    hinted = services.page_hints.get(*subject)
    try:
        read = await read_many(client, store, [*heads, *hinted])
    except DaprClientError as exc:
        logger.warning("context of %s: nothing readable (%s)", user_id, exc)
        return MemoryContext(unavailable=["metadata", "recent", "relevant"])
    metadata, has_pending = metadata_from(user_id, read)
    if has_pending:
        services.summarizer.ensure_scheduled(user_id)
    session_pages = history.page_keys(session_id, read, limit)
    log_pages = searchable_page_keys(user_id, read) if searching else []
    services.page_hints.put([*session_pages, *log_pages], *subject)
    try:
        missing = [key for key in [*session_pages, *log_pages] if key not in read]
        read |= await read_many(client, store, missing)
    except DaprClientError as exc:
        logger.warning("context of %s: recent and relevant unavailable (%s)", user_id, exc)
        return MemoryContext(metadata=metadata, unavailable=["recent", "relevant"])
    recent = history.history_from(session_id, read, limit).history
    relevant: list[SearchResult] = []
    if searching:
        found = await rank_memories(
            user_id, read, query, k, exclude_session=session_id, embedder=services.embedder
        )
        relevant = found.results
    return MemoryContext(metadata=metadata, recent=recent, relevant=relevant)
