"""Searching what a user said, across their sessions: the search route's logic.

One bulk read gets the log's head, the pending turns and the facts; one more reads the log's
newest pages. Turns and current facts are ranked together (``daca.memory.search``), a turn with
the reply of the turn before it in its session as context. A result whose turns a better result
already points to is left out (an extracted fact repeats its turn), so the ``k`` results point
to as many different turns as they can. With embeddings (``daca.memory.embeddings``), the query
is embedded too and the lexical ranking and the vector ranking (over the memories that have a
vector) are fused by reciprocal rank (``RRF_K``), so a memory that shares no word with the
query can still be found.
"""

from __future__ import annotations

from daca.contracts.models import ConversationTurn, Fact, SearchResult, SearchResults
from daca.dapr.client import DaprClient
from daca.memory import keys
from daca.memory.embeddings import Embedder, decode, embed_or_none, similarity
from daca.memory.records import FactBook
from daca.memory.search import Hit, SearchDocument, search
from daca.memory.statekit import parse
from daca.memory.userlog import searchable_turns

Memory = ConversationTurn | Fact
#: Reciprocal rank fusion's constant (Cormack et al. 2009).
RRF_K = 60


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


def _turn_documents(newest_first: list[ConversationTurn]) -> list[SearchDocument[Memory]]:
    """The turns as documents, each with the reply of the turn before it in its session."""
    documents = []
    for index, turn in enumerate(newest_first):
        before = newest_first[index + 1] if index + 1 < len(newest_first) else None
        context = before.assistant_reply if before and before.session_id == turn.session_id else ""
        documents.append(
            SearchDocument[Memory](turn.user_message, turn.assistant_reply, turn, context)
        )
    return documents


def _vector(source: Memory, book: FactBook) -> str | None:
    """The stored embedding of a memory, if it has one."""
    if isinstance(source, Fact):
        return book.vectors.get(source.fact_id)
    return getattr(source, "embedding", None)


def _fused(
    lexical: list[Hit[Memory]],
    documents: list[SearchDocument[Memory]],
    vectors: dict[int, str | None],
    query: list[float],
) -> list[Hit[Memory]]:
    """The documents ranked by the reciprocal-rank fusion of ``lexical`` and their similarity
    to the ``query`` vector (ties keep the lexical order)."""
    scores: dict[int, float] = {}
    by_id = {id(d): d for d in documents}
    for rank, hit in enumerate(lexical):
        scores[id(hit.document)] = 1 / (RRF_K + rank + 1)
    similar = sorted(
        ((similarity(query, decode(v)), i) for i, v in vectors.items() if v is not None),
        key=lambda pair: -pair[0],
    )
    for rank, (cosine, i) in enumerate(similar):
        if cosine > 0:
            scores[i] = scores.get(i, 0.0) + 1 / (RRF_K + rank + 1)
    ranked = sorted(scores, key=lambda i: -scores[i])
    return [Hit(by_id[i], round(scores[i] * RRF_K, 4)) for i in ranked]


def _distinct(results: list[SearchResult], k: int) -> list[SearchResult]:
    """The first ``k`` results that point to a turn no better result points to."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for result in results:
        turns = {(result.session_id, turn_id) for turn_id in result.turn_ids}
        if turns <= seen:
            continue
        seen |= turns
        kept.append(result)
        if len(kept) == k:
            break
    return kept


async def search_memories(
    client: DaprClient,
    store: str,
    user_id: str,
    query: str,
    k: int,
    *,
    exclude_session: str | None = None,
    embedder: Embedder | None = None,
) -> SearchResults:
    """The ``k`` turns and facts of ``user_id`` that best match ``query`` (none of
    ``exclude_session``)."""
    head_entry, pending_entry, facts_entry = await client.bulk_get_state(
        store, [keys.log_head_key(user_id), keys.pending_key(user_id), keys.facts_key(user_id)]
    )
    turns = await searchable_turns(client, store, user_id, head_entry, pending_entry)
    book = parse(FactBook, facts_entry) or FactBook()
    facts = book.current
    documents: list[SearchDocument[Memory]] = [
        SearchDocument[Memory](f.text, "", f) for f in reversed(facts)
    ]
    documents += _turn_documents(turns)
    if exclude_session is not None:
        documents = [d for d in documents if d.source.session_id != exclude_session]
    vectors = {id(d): _vector(d.source, book) for d in documents}
    query_vector = None
    if embedder is not None and any(vectors.values()):
        [encoded] = await embed_or_none(embedder, [query])
        query_vector = decode(encoded) if encoded is not None else None
    if query_vector is None:
        hits = search(documents, query, 2 * k)
    else:
        hits = _fused(search(documents, query, len(documents)), documents, vectors, query_vector)
    results = [_result(hit.document.source, hit.score) for hit in hits[: 2 * k]]
    return SearchResults(results=_distinct(results, k))
