"""Text helpers of the offline model: sentences, content words, overlap matching, merging.

Deliberately simple and deterministic: a "stemming-lite" that folds common English suffixes,
a stopword list, and content-word overlap as the only relevance signal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'll|i'd|my|me|mine|myself|we|we're|our|us)\b")
_SUFFIX_RULES = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))
_NO_UNDOUBLE = frozenset("lsz")
_VOWELS = frozenset("aeiouy")
_STOPWORD_TEXT = """
    a about above after again all also am an and any are as at be been before being but by can
    could did didn do does doesn don for from had has have having he her here hers him his how i
    if in into is isn it its just let me mine my myself no not now of on or our ours out over
    please really remember said say she should so some such tell than that the their them then
    there these they this those to too up us very was wasn we were what when where which while who
    whom why will with won would you your yours know think thank thanks hello hi hey ok okay
    sorry yes yeah appreciate
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_QUESTION_TEXT = """
    what when where which who whom whose why how is are am was were do does did can could will
    would shall should may might must have has had isn aren wasn weren don doesn didn shouldn
    wouldn couldn haven hasn
"""
_QUESTION_STARTS = frozenset(_QUESTION_TEXT.split())
_OPENER_TEXT = "so and but hey hi oh well ok okay um hmm also then"
_OPENERS = frozenset(_OPENER_TEXT.split())
_LIVES = re.compile(r"\bi(?: now|'m| am)? (?:live|living|lives|based|moved|relocated) (?:in|to)\b")
_SLOTS = (
    ("home", _LIVES),
    ("work", re.compile(r"\bi(?: now|'m| am)? (?:work|working) (?:at|for)\b")),
    ("age", re.compile(r"\bi(?:'m| am) \d+ (?:years? old|yo)\b")),
    ("name", re.compile(r"\bmy name is\b|\bcall me\b")),
    ("favourite {0}", re.compile(r"\bmy favou?rite ([a-z]+) (?:is|are)\b")),
    ("{0} name", re.compile(r"\bmy ([a-z]+)'s name is\b|\bmy ([a-z]+) is (?:called|named)\b")),
    ("{0}", re.compile(r"\bmy (job|address|email|birthday|phone number) is\b")),
)


def normalise(text: str) -> str:
    """Lower-case ``text`` with typographic apostrophes made plain."""
    return text.replace("\u2019", "'").replace("\u2018", "'").lower()


def _undouble(word: str) -> str:
    """``planning`` -> ``plann`` -> ``plan``: drop a doubled final consonant."""
    last = word[-1:]
    if len(word) >= 3 and word[-2:-1] == last and last not in _NO_UNDOUBLE | _VOWELS:
        return word[:-1]
    return word


def stem(word: str) -> str:
    """A crude stem: contraction, one suffix, a doubled consonant and a final ``e`` removed."""
    word = word.split("'", 1)[0]
    for suffix, replacement in _SUFFIX_RULES:
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 2:
            word = word[: -len(suffix)] + replacement
            break
    word = _undouble(word)
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def content_words(text: str) -> frozenset[str]:
    """The stemmed words of ``text`` that are not stopwords."""
    words = (stem(word) for word in _WORD.findall(normalise(text)) if word not in _STOPWORDS)
    return frozenset(word for word in words if word and word not in _STOPWORDS)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, empty ones dropped."""
    return [part.strip() for part in _SENTENCE_BREAK.split(text.strip()) if part.strip()]


def is_question(text: str) -> bool:
    """Whether ``text`` ends as a question (see ``asks`` for whether it really asks)."""
    return text.rstrip().endswith("?")


def asks(sentence: str) -> bool:
    """Whether ``sentence`` asks something: a question mark after a question word or an
    inverted verb ("Where was I...?", "Do you...?"). A statement said with a rising tone
    ("Tomorrow we will pack for SF?") asks nothing: it states a plan."""
    if not is_question(sentence):
        return False
    words = _WORD.findall(normalise(sentence))
    while words and words[0] in _OPENERS:
        words = words[1:]
    return not words or words[0] in _QUESTION_STARTS


def is_personal_statement(sentence: str) -> bool:
    """A first-person statement with some content: a fact, plan or preference of the user,
    including one phrased as a question that asks nothing."""
    if asks(sentence) or not _FIRST_PERSON.search(normalise(sentence)):
        return False
    return bool(content_words(sentence))


def as_statement(sentence: str) -> str:
    """``sentence`` ending with a full stop when it ends with a question mark that asks
    nothing, else as a sentence."""
    text = sentence.strip()
    if is_question(text) and not asks(text):
        text = text.rstrip("?").rstrip() + "."
    return as_sentence(text)


def slot(sentence: str) -> str | None:
    """What a statement says about the user that only one statement can say at a time (where
    they live, where they work, their age, "my <something> is"), or ``None``: two statements
    of one slot with different content are a change, the newer superseding the older."""
    text = normalise(sentence)
    for name, pattern in _SLOTS:
        if match := pattern.search(text):
            return name.format(*(stem(word) for word in match.groups() if word))
    return None


def as_sentence(text: str) -> str:
    """``text`` ending with sentence punctuation."""
    text = text.strip()
    return text if text[-1:] in {".", "!", "?"} else f"{text}."


def best_match(question: str, candidates: Sequence[str], *, min_overlap: int = 2) -> str | None:
    """The candidate sharing the most content words with ``question`` (newest wins ties).

    A match needs ``min_overlap`` shared words, or all of the question's words when it has
    fewer; questions among the candidates are never answers.
    """
    wanted = content_words(question)
    needed = min(min_overlap, len(wanted))
    scored = [
        (len(wanted & content_words(candidate)), index, candidate)
        for index, candidate in enumerate(candidates)
        if not is_question(candidate)
    ]
    best = max(scored, default=(0, -1, ""))
    return best[2] if needed > 0 and best[0] >= needed else None


def _fact_key(sentence: str) -> frozenset[str] | str:
    """What makes two facts the same: their content words (or their text when they have none)."""
    return content_words(sentence) or normalise(sentence)


def merge_facts(
    older: Iterable[str], newer: Iterable[str], *, max_facts: int, max_chars: int
) -> list[str]:
    """``older`` then ``newer`` facts, deduplicated (a repeated fact moves to the newest place),
    oldest dropped first while over ``max_facts`` facts or ``max_chars`` characters."""
    merged: dict[frozenset[str] | str, str] = {}
    for sentence in (*older, *newer):
        key = _fact_key(sentence)
        merged.pop(key, None)
        merged[key] = as_sentence(sentence)
    facts = list(merged.values())
    while facts and (len(facts) > max_facts or len(" ".join(facts)) > max_chars):
        facts.pop(0)
    return facts
