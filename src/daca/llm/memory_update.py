"""What one memory call returns, and how its JSON answer is read back.

One call per batch of a user's pending turns writes both the new summary and the new facts
(``daca.llm.prompts.SUMMARY_INSTRUCTIONS``): a fact extraction costs no call of its own. The
model answers ``{"summary": ..., "facts": [{"text", "turns", "supersedes"}]}``; the reader is
lenient where a model is sloppy (a fenced block, prose around the object, an unknown turn or
fact id) and strict where it matters: a fact is attributed only to turns of the batch and
supersedes only facts the prompt showed. A model that ignores the format and answers plain
text still gives a summary (with no facts), so a summary-only model keeps working.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from daca.contracts.models import MAX_FACT_CHARS, ConversationTurn
from daca.llm.extractive import content_words
from daca.llm.prompts import clip, one_line, turn_label

logger = logging.getLogger(__name__)

#: At most this many new facts are taken from one answer.
MAX_NEW_FACTS = 50


class UnreadableUpdate(ValueError):
    """The model's answer looks like JSON but is not the memory object."""


@dataclass(frozen=True)
class NewFact:
    """A fact the model stated, the turns of the batch it comes from, the facts it replaces."""

    text: str
    turns: list[ConversationTurn]
    supersedes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryUpdate:
    """The new summary and the new facts of one batch."""

    summary: str
    facts: list[NewFact] = field(default_factory=list)


def _json_object(text: str) -> object:
    """The JSON value ``text`` holds, inside a fenced block or prose; ``None`` when none."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None


def _strings(value: object) -> list[str]:
    """``value`` as a list of strings (a single string is a list of one)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _likely_turn(text: str, turns: Sequence[ConversationTurn]) -> ConversationTurn:
    """The turn whose user message shares the most words with ``text`` (the newest on ties)."""
    words = content_words(text)
    scored = [(len(words & content_words(t.user_message)), i) for i, t in enumerate(turns)]
    return turns[max(scored)[1]]


def _fact(item: object, labels: Mapping[str, ConversationTurn], known: set[str]) -> NewFact | None:
    """One fact of the answer, or ``None`` when it has no text."""
    if isinstance(item, str):
        item = {"text": item}
    if not isinstance(item, dict):
        return None
    text = clip(one_line(str(item.get("text") or "")), MAX_FACT_CHARS)
    if not text:
        return None
    turns = [labels[label] for label in dict.fromkeys(_strings(item.get("turns")))
             if label in labels]  # fmt: skip
    if not turns:
        turns = [_likely_turn(text, list(labels.values()))]
    supersedes = [i for i in dict.fromkeys(_strings(item.get("supersedes"))) if i in known]
    return NewFact(text=text, turns=turns, supersedes=supersedes)


def read_update(
    answer: str, turns: Sequence[ConversationTurn], known_fact_ids: set[str]
) -> MemoryUpdate:
    """The update a model's ``answer`` states for ``turns`` (labelled as in the prompt).

    Raises ``UnreadableUpdate`` when the answer is JSON without a usable summary.
    """
    text = answer.strip()
    value = _json_object(text)
    if value is None:
        if text.startswith(("{", "[", "```")):
            raise UnreadableUpdate("the model's answer is not valid JSON")
        logger.warning("the model answered the memory task in plain text: summary only")
        return MemoryUpdate(summary=text)
    if not isinstance(value, dict) or not isinstance(value.get("summary"), str):
        raise UnreadableUpdate("the model's answer has no summary")
    labels = {turn_label(i): turn for i, turn in enumerate(turns)}
    items = value.get("facts")
    facts = [
        fact
        for item in (items if isinstance(items, list) else [])[:MAX_NEW_FACTS]
        if (fact := _fact(item, labels, known_fact_ids)) is not None
    ] if turns else []  # fmt: skip
    return MemoryUpdate(summary=value["summary"].strip(), facts=facts)
