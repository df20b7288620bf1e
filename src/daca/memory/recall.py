"""Searching what a user said, across their sessions: the search route's logic.

One bulk read gets the log's head, the pending turns and the facts; one more reads the log's
newest pages. Turns and current facts are ranked together (``daca.memory.search``).
"""

from __future__ import annotations

from daca.contracts.models import ConversationTurn, Fact, SearchResult, SearchResults
from daca.dapr.client import DaprClient
from daca.memory import keys
from daca.memory.records import FactBook
from daca.memory.search import SearchDocument, search
from daca.memory.statekit import parse
from daca.memory.userlog import searchable_turns

Memory = ConversationTurn | Fact


def _result(source: Memory, score: float) -> SearchResult:
    if isinstance(source, Fact):
        return SearchResult(
            kind="fact",
            text=source.text,
            fact_id=source.fact_id,
            turn_ids=source.turn_ids,
            session_id=source.session_id,
            timestamp=source.timestamp,
            score=score,
        )
    return SearchResult(
        kind="turn",
        text=source.user_message,
        reply=source.assistant_reply,
        turn_ids=[source.turn_id],
        session_id=source.session_id,
        timestamp=source.timestamp,
        score=score,
    )


async def search_memories(
    client: DaprClient, store: str, user_id: str, query: str, k: int
) -> SearchResults:
    """The ``k`` turns and facts of ``user_id`` that best match ``query``."""
    head_entry, pending_entry, facts_entry = await client.bulk_get_state(
        store, [keys.log_head_key(user_id), keys.pending_key(user_id), keys.facts_key(user_id)]
    )
    turns = await searchable_turns(client, store, user_id, head_entry, pending_entry)
    facts = (parse(FactBook, facts_entry) or FactBook()).current
    documents: list[SearchDocument[Memory]] = [
        SearchDocument[Memory](f.text, "", f) for f in reversed(facts)
    ]
    documents += [SearchDocument[Memory](t.user_message, t.assistant_reply, t) for t in turns]
    hits = search(documents, query, k)
    return SearchResults(results=[_result(hit.document.source, hit.score) for hit in hits])
