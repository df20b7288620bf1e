"""Lexical search over a user's memories: BM25 with typo-tolerant term matching.

Documents are turns (the user's message, the assistant's reply at half weight, and the reply
of the turn before at ``CONTEXT_WEIGHT``, since an answer is often only understandable with the
question it answers) and facts (their text); each carries the record it stands for
(``source``). Terms are
the stemmed content words of ``daca.llm.extractive`` (stopwords removed). A query term matches a
document term that is equal, or within one edit (insertion, deletion, substitution or swap of
neighbours) for terms of five letters or more, two edits for nine or more, so "tommorrow" finds
"tomorrow". A fuzzy match counts at ``FUZZY_WEIGHT`` of an exact one. Scores are BM25
(k1 = 1.2, b = 0.75) over the documents searched.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from daca.contracts.models import ConversationTurn
from daca.llm.extractive import normalise, stem

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP_TEXT = """
    a about above after again all also am an and any are as at be been before being but by
    can could did do does for from had has have having he her here hers him his how i if in into
    is it its just me my myself no not now of on or our ours out over so some such than that the
    their them then there these they this those to too up us very was we were what when where
    which while who whom why will with would you your yours"""
_STOP = frozenset(_STOP_TEXT.split())
K1, B = 1.2, 0.75
FUZZY_WEIGHT = 0.8
REPLY_WEIGHT = 0.5
CONTEXT_WEIGHT = 0.3


T = TypeVar("T")


@dataclass(frozen=True)
class SearchDocument(Generic[T]):
    """One searchable memory: its main text, a reply and a context weighed less, and what it
    stands for."""

    text: str
    reply: str
    source: T
    context: str = ""


@dataclass(frozen=True)
class Hit(Generic[T]):
    """A document that matched, and its score."""

    document: SearchDocument[T]
    score: float


def searchable_text(turn: ConversationTurn) -> str:
    """What an embedding of ``turn`` is computed from: both of its messages."""
    return f"{turn.user_message}\n{turn.assistant_reply}".strip()


#: Stems and the terms of recent texts are cached: a user's turns are read again by every
#: search, and stemming them is most of a search's cost.
_stem = lru_cache(maxsize=100_000)(stem)


@lru_cache(maxsize=20_000)
def terms(text: str) -> tuple[str, ...]:
    """The stemmed content words of ``text``, in order, repeats kept."""
    words = (_stem(word) for word in _WORD.findall(normalise(text)) if word not in _STOP)
    return tuple(word for word in words if word)


@lru_cache(maxsize=65536)
def within(a: str, b: str) -> float:
    """1 for the same term, ``FUZZY_WEIGHT`` for a near one (see the module), else 0."""
    if a == b:
        return 1.0
    shortest = min(len(a), len(b))
    allowed = 2 if shortest >= 9 else 1 if shortest >= 5 else 0
    if allowed == 0 or abs(len(a) - len(b)) > allowed:
        return 0.0
    return FUZZY_WEIGHT if _edits(a, b, allowed) <= allowed else 0.0


def _edits(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance between ``a`` and ``b``, cut off above ``limit``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        row = [i]
        for j, other in enumerate(b, 1):
            cost = 0 if char == other else 1
            value = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                value = min(value, previous2[j - 2] + 1)
            row.append(value)
        if min(row) > limit:
            return limit + 1
        previous2, previous = previous, row
    return previous[-1]


def _frequencies(document: SearchDocument[T]) -> dict[str, float]:
    """Term frequencies: the text's words count 1, the reply's ``REPLY_WEIGHT``, the
    context's ``CONTEXT_WEIGHT``."""
    counts: dict[str, float] = {}
    for term in terms(document.text):
        counts[term] = counts.get(term, 0.0) + 1.0
    for term in terms(document.reply):
        counts[term] = counts.get(term, 0.0) + REPLY_WEIGHT
    for term in terms(document.context):
        counts[term] = counts.get(term, 0.0) + CONTEXT_WEIGHT
    return counts


def search(documents: Sequence[SearchDocument[T]], query: str, k: int) -> list[Hit[T]]:
    """The ``k`` best documents for ``query``, best first; ties keep the documents' order (pass
    them newest first). A document with no matching term is no hit."""
    wanted = list(dict.fromkeys(terms(query)))
    if not wanted or not documents or k <= 0:
        return []
    frequencies = [_frequencies(document) for document in documents]
    lengths = [sum(counts.values()) for counts in frequencies]
    average = (sum(lengths) / len(lengths)) or 1.0
    vocabulary = {term for counts in frequencies for term in counts}
    matches = [(t, w) for q in wanted for t in vocabulary if (w := within(q, t))]
    df = Counter(t for counts in frequencies for t, _ in matches if t in counts)
    hits: list[Hit[T]] = []
    for document, counts, length in zip(documents, frequencies, lengths, strict=True):
        score = sum(
            weight * _bm25(counts[term], length, average, df[term], len(documents))
            for term, weight in matches
            if term in counts
        )
        if score > 0:
            hits.append(Hit(document, round(score, 4)))
    hits.sort(key=lambda hit: -hit.score)
    return hits[:k]


def _bm25(tf: float, length: float, average: float, df: int, total: int) -> float:
    idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
    return idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
