"""Searching what a user said, across their sessions: the search route's logic.

One bulk read gets the log's head, the pending turns and the facts; one more reads the log's
newest pages. Turns and current facts (but those that only repeat their turn's words) are
ranked together (``daca.memory.search``), a turn with
the reply of the turn before it in its session as context. A result whose turns a better result
already points to is left out (an extracted fact repeats its turn), so the ``k`` results point
to as many different turns as they can. With embeddings (``daca.memory.embeddings``), the query
is embedded too and the lexical ranking and the vector ranking (over the memories that have a
vector) are fused by normalised score (``VECTOR_WEIGHT``), so a memory that shares no word with
the query can still be found.
"""

from __future__ import annotations

from daca.contracts.models import ConversationTurn, Fact, SearchResult, SearchResults
from daca.dapr.client import DaprClient
from daca.llm.extractive import normalise
from daca.memory import keys
from daca.memory.embeddings import Embedder, decode, embed_or_none, similarity
from daca.memory.records import FactBook
from daca.memory.search import Hit, SearchDocument, search
from daca.memory.statekit import Entries, parse, read_many
from daca.memory.userlog import searchable_page_keys, searchable_turns_from

Memory = ConversationTurn | Fact
#: The share of the meaning (cosine) in a hybrid score; the rest is the lexical score. Score
#: fusion, not reciprocal-rank fusion: on LoCoMo's dev conversations with three small embedding
#: models, each weaker alone than BM25, rank fusion lost recall and a 0.5 score fusion gained.
VECTOR_WEIGHT = 0.5


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
    documents: list[SearchDocument[Memory]] = []
    for index, turn in enumerate(newest_first):
        before = newest_first[index + 1] if index + 1 < len(newest_first) else None
        context = before.assistant_reply if before and before.session_id == turn.session_id else ""
        # Not ``SearchDocument[Memory](...)``: a call through the subscripted alias costs a
        # failed ``__orig_class__`` assignment on the frozen instance, per document.
        documents.append(SearchDocument(turn.user_message, turn.assistant_reply, turn, context))
    return documents


def _not_repeating(facts: list[Fact], turns: list[ConversationTurn]) -> list[Fact]:
    """``facts`` without those that only repeat words of their turn, which is searched anyway
    (the offline extractor's facts are the user's own sentences): a repeat would only take the
    place of another memory. A fact whose turn is no longer searched (past the newest turns,
    or expired) is kept."""
    said = {(t.session_id, t.turn_id): normalise(t.user_message) for t in turns}

    def repeats(fact: Fact) -> bool:
        sources = [said.get((fact.session_id, turn_id)) for turn_id in fact.turn_ids]
        core = normalise(fact.text).rstrip(".!? ")
        return all(s is not None for s in sources) and any(core in (s or "") for s in sources)

    return [fact for fact in facts if not repeats(fact)]


def _vector(source: Memory, book: FactBook) -> str | None:
    """The stored embedding of a memory, if it has one."""
    if isinstance(source, Fact):
        return book.vectors.get(source.fact_id)
    return getattr(source, "embedding", None)


def _normalised(scores: dict[int, float]) -> dict[int, float]:
    """``scores`` scaled to 0..1 (min-max); all 1 when they are equal."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    return {i: (s - low) / (high - low) if high > low else 1.0 for i, s in scores.items()}


def _fused(
    lexical: list[Hit[Memory]],
    documents: list[SearchDocument[Memory]],
    vectors: dict[int, str | None],
    query: list[float],
) -> list[Hit[Memory]]:
    """The documents ranked by ``(1 - VECTOR_WEIGHT) * lexical + VECTOR_WEIGHT * cosine``,
    each score min-max normalised over the candidates (ties keep the lexical order)."""
    by_id = {id(d): d for d in documents}
    words = _normalised({id(hit.document): hit.score for hit in lexical})
    cosines = {i: similarity(query, decode(v)) for i, v in vectors.items() if v is not None}
    meaning = _normalised({i: c for i, c in cosines.items() if c > 0})
    order = {id(hit.document): rank for rank, hit in enumerate(lexical)}
    fused = {
        i: (1 - VECTOR_WEIGHT) * words.get(i, 0.0) + VECTOR_WEIGHT * meaning.get(i, 0.0)
        for i in words.keys() | meaning.keys()
    }
    ranked = sorted(fused, key=lambda i: (-fused[i], order.get(i, len(order))))
    return [Hit(by_id[i], round(fused[i], 4)) for i in ranked if fused[i] > 0]


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


def search_keys(user_id: str) -> list[str]:
    """What a search reads first: the log's head, the pending turns and the facts. The log pages
    it needs follow from the head (``daca.memory.userlog.searchable_page_keys``)."""
    return [keys.log_head_key(user_id), keys.pending_key(user_id), keys.facts_key(user_id)]


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
    ``exclude_session``): the ``search_keys``, then the log pages, then ``rank_memories``."""
    read = await read_many(client, store, search_keys(user_id))
    read |= await read_many(client, store, searchable_page_keys(user_id, read))
    return await rank_memories(
        user_id, read, query, k, exclude_session=exclude_session, embedder=embedder
    )


async def rank_memories(
    user_id: str,
    read: Entries,
    query: str,
    k: int,
    *,
    exclude_session: str | None = None,
    embedder: Embedder | None = None,
) -> SearchResults:
    """``search_memories``'s results, from the ``search_keys`` and ``searchable_page_keys``
    entries already in ``read`` (only the embedder, if any, is called)."""
    turns = searchable_turns_from(user_id, read)
    book = parse(FactBook, read[keys.facts_key(user_id)]) or FactBook()
    facts = _not_repeating(book.current, turns)
    documents: list[SearchDocument[Memory]] = [
        SearchDocument(f.text, "", f) for f in reversed(facts)
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
