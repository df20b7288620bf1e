"""Searching what a user said, across their sessions: the search route's logic."""

from __future__ import annotations

from daca.contracts.models import ConversationTurn, SearchResult, SearchResults
from daca.dapr.client import DaprClient
from daca.memory.search import SearchDocument, search
from daca.memory.userlog import searchable_turns


def _document(turn: ConversationTurn) -> SearchDocument:
    return SearchDocument(
        turn_id=turn.turn_id,
        session_id=turn.session_id,
        timestamp=turn.timestamp,
        user_message=turn.user_message,
        assistant_reply=turn.assistant_reply,
    )


async def search_memories(
    client: DaprClient, store: str, user_id: str, query: str, k: int
) -> SearchResults:
    """The ``k`` turns of ``user_id`` that best match ``query``."""
    turns = await searchable_turns(client, store, user_id)
    hits = search([_document(turn) for turn in turns], query, k)
    return SearchResults(
        results=[
            SearchResult(
                kind="turn",
                text=hit.document.user_message,
                reply=hit.document.assistant_reply,
                turn_ids=[hit.document.turn_id],
                session_id=hit.document.session_id,
                timestamp=hit.document.timestamp,
                score=hit.score,
            )
            for hit in hits
        ]
    )
