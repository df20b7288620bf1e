"""What the chat reads for one reply, in one call: ``GET /memories/{user_id}/context``.

The chat needs the user's metadata, the session's most recent entries and the memories of the
user's other sessions that match the message. As three invocations they cost three trips
through both sidecars; as one, the three reads run here concurrently. A part whose read fails
is left at its default and named in ``unavailable`` (a warning is logged), so the chat still
gets the others, as it did when it read them one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Literal, TypeVar

from daca.contracts.models import ConversationEntry, MemoryContext, SearchResult, UserMetadata
from daca.dapr.errors import DaprClientError
from daca.memory.container import MemoryServices
from daca.memory.recall import search_memories

logger = logging.getLogger(__name__)

T = TypeVar("T")
Part = Literal["metadata", "recent", "relevant"]


async def read_context(
    services: MemoryServices, user_id: str, session_id: str, limit: int, query: str, k: int
) -> MemoryContext:
    """The three parts for a reply to ``query`` in ``session_id``; pending turns get summarised."""
    unavailable: list[Part] = []

    async def part(name: Part, read: Awaitable[T], default: T) -> T:
        try:
            return await read
        except DaprClientError as exc:
            logger.warning("context of %s: %s unavailable (%s)", user_id, name, exc)
            unavailable.append(name)
            return default

    async def metadata() -> UserMetadata:
        found, has_pending = await services.users.get(user_id)
        if has_pending:
            services.summarizer.ensure_scheduled(user_id)
        return found

    async def relevant() -> list[SearchResult]:
        if not (query.strip() and k):
            return []
        found = await search_memories(
            services.client, services.settings.state_store, user_id, query, k,
            exclude_session=session_id, embedder=services.embedder,
        )  # fmt: skip
        return found.results

    async def recent() -> list[ConversationEntry]:
        return (await services.history.read(session_id, limit)).history

    no_entries: list[ConversationEntry] = []
    no_results: list[SearchResult] = []
    got_metadata, got_recent, got_relevant = await asyncio.gather(
        part("metadata", metadata(), UserMetadata()),
        part("recent", recent(), no_entries),
        part("relevant", relevant(), no_results),
    )
    return MemoryContext(
        metadata=got_metadata,
        recent=got_recent,
        relevant=got_relevant,
        unavailable=sorted(unavailable),
    )
