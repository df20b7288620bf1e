"""A user's facts: adding what a memory call extracted, superseding, bounding, choosing.

Facts live in ``facts:{user_id}`` (``FactBook``), written in the same transaction as the
summary that extracted them (``daca.memory.summaries``). A new fact that repeats a current one
(the same content words) is not added twice; a new fact that supersedes current ones marks them
``superseded_by`` and keeps them as history, as Zep invalidates an edge instead of deleting it.
The book is bounded: the oldest superseded facts go first, then the oldest current ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from daca.contracts.models import ConversationTurn, Fact
from daca.llm.extractive import content_words
from daca.llm.memory_update import NewFact
from daca.memory.records import FactBook
from daca.memory.search import SearchDocument, search

#: The most current facts a user keeps, and the most superseded ones kept as history.
MAX_CURRENT_FACTS = 500
MAX_SUPERSEDED_FACTS = 200
#: How many known facts a memory call is shown (those closest to the new turns).
PROMPT_FACTS = 40


def _same(a: str, b: str) -> bool:
    """Whether two fact texts say the same thing (the same content words)."""
    return content_words(a) == content_words(b)


def _provenance(new: NewFact) -> tuple[list[str], ConversationTurn]:
    """The fact's turns of the session of its newest turn (a turn id is unique in a session),
    and that newest turn."""
    last = new.turns[-1]
    turn_ids = [t.turn_id for t in new.turns if t.session_id == last.session_id]
    return list(dict.fromkeys(turn_ids)), last


def add_facts(
    book: FactBook,
    new_facts: Sequence[NewFact],
    now: str,
    vectors: Sequence[str | None] = (),
) -> FactBook:
    """``book`` with ``new_facts`` added (repeats skipped, superseded facts marked), bounded;
    ``vectors[i]`` is the embedding of ``new_facts[i]``, if any."""
    facts = list(book.facts)
    embeddings = dict(book.vectors)
    next_id = book.next_id
    for index, new in enumerate(new_facts):
        if any(f.superseded_by is None and _same(f.text, new.text) for f in facts):
            continue
        fact_id = f"f{next_id}"
        next_id += 1
        replaced = set(new.supersedes)
        facts = [
            f.model_copy(update={"superseded_by": fact_id, "superseded_at": now})
            if f.fact_id in replaced and f.superseded_by is None
            else f
            for f in facts
        ]
        turn_ids, last = _provenance(new)
        if index < len(vectors) and (vector := vectors[index]) is not None:
            embeddings[fact_id] = vector
        facts.append(
            Fact(
                fact_id=fact_id,
                text=new.text,
                turn_ids=turn_ids,
                session_id=last.session_id,
                timestamp=last.timestamp,
                created_at=now,
            )
        )
    kept = _bounded(facts)
    ids = {f.fact_id for f in kept}
    return FactBook(
        next_id=next_id, facts=kept, vectors={i: v for i, v in embeddings.items() if i in ids}
    )


def _bounded(facts: list[Fact]) -> list[Fact]:
    """``facts`` without the oldest superseded and the oldest current ones past the limits."""
    superseded = [f.fact_id for f in facts if f.superseded_by is not None]
    current = [f.fact_id for f in facts if f.superseded_by is None]
    dropped = set(superseded[: max(0, len(superseded) - MAX_SUPERSEDED_FACTS)])
    dropped |= set(current[: max(0, len(current) - MAX_CURRENT_FACTS)])
    return [f for f in facts if f.fact_id not in dropped]


def without_fact(book: FactBook, fact_id: str) -> FactBook | None:
    """``book`` without the fact ``fact_id`` (and no longer naming it as a superseder), or
    ``None`` when it holds no such fact."""
    if all(f.fact_id != fact_id for f in book.facts):
        return None
    kept = [
        f.model_copy(update={"superseded_by": None, "superseded_at": None})
        if f.superseded_by == fact_id
        else f
        for f in book.facts
        if f.fact_id != fact_id
    ]
    vectors = {i: v for i, v in book.vectors.items() if i != fact_id}
    return book.model_copy(update={"facts": kept, "vectors": vectors})


def facts_for_prompt(book: FactBook, turns: Sequence[ConversationTurn]) -> list[tuple[str, str]]:
    """The ``(id, text)`` of the current facts a memory call over ``turns`` should see: those
    closest to what the turns say (so a change can supersede them), then the newest, at most
    ``PROMPT_FACTS``, oldest first."""
    current = book.current
    if len(current) <= PROMPT_FACTS:
        return [(f.fact_id, f.text) for f in current]
    query = " ".join(turn.user_message for turn in turns)
    documents = [SearchDocument(f.text, "", f) for f in reversed(current)]
    chosen = {hit.document.source.fact_id for hit in search(documents, query, PROMPT_FACTS)}
    for fact in reversed(current):
        if len(chosen) >= PROMPT_FACTS:
            break
        chosen.add(fact.fact_id)
    return [(f.fact_id, f.text) for f in current if f.fact_id in chosen]
