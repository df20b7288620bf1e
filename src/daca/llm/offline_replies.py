"""What the offline model says: it reads back the layout ``daca.llm.prompts`` writes.

Each reply is honest about where it comes from: the offline model has no language ability
beyond extracting, matching and templating.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from daca.llm import prompts
from daca.llm.extractive import (
    as_sentence,
    as_statement,
    best_match,
    content_words,
    is_personal_statement,
    is_question,
    merge_facts,
    normalise,
    slot,
    split_sentences,
)

NO_FACTS = "No personal facts shared yet."
"""The offline summary when the user has not said anything about themselves."""

MAX_SUMMARY_FACTS = 12
MAX_SUMMARY_CHARS = 1200
_TIME_WORDS = re.compile(r"\b(time|date|clock)\b|\bwhat day\b")
_TIME_REQUEST = re.compile(r"^\s*(tell|give|show)\b.*\b(time|date)\b")
_GREETINGS = {"casual": "Hey", "formal": "Good day", "friendly": "Hi"}
_PLACEHOLDERS = {prompts.NOTHING_YET, prompts.UNKNOWN, NO_FACTS}
_TURN_LABEL = re.compile(r"^\[(t\d+)\] ")
_FACT_LINE = re.compile(r"^- \[([A-Za-z0-9_.-]+)\] (.*)$")


@dataclass(frozen=True)
class Recalled:
    """A memory the chat retrieved for this message: when, and what the user said."""

    day: str
    said: str


@dataclass(frozen=True)
class Memory:
    """What the chat instructions say about the user."""

    name: str | None
    style: str | None
    facts: list[str]
    recalled: list[Recalled]


def _between(text: str, start: str, end: str | None) -> str:
    """The text after the ``start`` header and before the ``end`` header ('' if absent)."""
    _, found, rest = text.partition(start)
    if not found:
        return ""
    return rest.partition(end)[0] if end else rest


def _prefixed(text: str, prefix: str) -> str | None:
    """The value of the first ``prefix`` line of ``text``, or ``None`` when unknown."""
    for line in text.splitlines():
        if line.startswith(prefix):
            value = line[len(prefix) :].strip()
            return value if value and value not in _PLACEHOLDERS else None
    return None


def _user_lines(section: str) -> list[str]:
    """The user's messages in a section of ``- user:`` / ``- assistant:`` lines."""
    marker = prompts.USER_LINE
    return [line[len(marker) :] for line in section.splitlines() if line.startswith(marker)]


def _sentences(text: str) -> list[str]:
    """The sentences of ``text``, placeholders left out."""
    return [s for s in split_sentences(text) if s not in _PLACEHOLDERS]


def _recalled(section: str) -> list[Recalled]:
    """The retrieved memories of the relevant-memories section, best first."""
    found = []
    for line in section.splitlines():
        if line.startswith(prompts.MEMORY_LINE) and prompts.SAID in line:
            day, _, rest = line[len(prompts.MEMORY_LINE) :].partition(prompts.SAID)
            found.append(Recalled(day=day, said=rest.partition(prompts.REPLIED)[0].strip()))
    return found


def parse_memory(instructions: str) -> Memory:
    """Name, style, known facts (summary sentences, then recent user sentences) and the
    memories retrieved for this message."""
    summary = _between(instructions, prompts.SUMMARY_HEADER, prompts.RELEVANT_HEADER)
    relevant = _between(instructions, prompts.RELEVANT_HEADER, prompts.RECENT_HEADER)
    recent = _between(instructions, prompts.RECENT_HEADER, None)
    said = [s for line in _user_lines(recent) for s in split_sentences(line)]
    return Memory(
        name=_prefixed(instructions, prompts.NAME_PREFIX),
        style=_prefixed(instructions, prompts.STYLE_PREFIX),
        facts=_sentences(summary) + said,
        recalled=_recalled(relevant),
    )


def _labelled_statements(section: str) -> list[tuple[str, str]]:
    """The user's statements of the new-turns section, each with its turn's label."""
    found: list[tuple[str, str]] = []
    label = ""
    for line in section.splitlines():
        if match := _TURN_LABEL.match(line):
            label = match.group(1)
        elif line.startswith(prompts.USER_LINE) and label:
            sentences = split_sentences(line[len(prompts.USER_LINE) :])
            found.extend((label, s) for s in sentences if is_personal_statement(s))
    return found


def _known_facts(section: str) -> list[tuple[str, str]]:
    """The ``(id, text)`` of the known-facts section."""
    return [(m.group(1), m.group(2)) for line in section.splitlines()
            if (m := _FACT_LINE.match(line))]  # fmt: skip


def _new_facts(
    known: list[tuple[str, str]], said: list[tuple[str, str]]
) -> list[dict[str, object]]:
    """Each statement not already known, as a fact superseding the known facts of its slot."""
    seen = {frozenset(content_words(text)) for _, text in known}
    facts: list[dict[str, object]] = []
    for label, sentence in said:
        words = frozenset(content_words(sentence))
        if words in seen:
            continue
        seen.add(words)
        kind = slot(sentence)
        replaced = [i for i, text in known if kind is not None and slot(text) == kind]
        facts.append({"text": as_statement(sentence), "turns": [label], "supersedes": replaced})
    return facts


def write_summary(summary_input: str) -> str:
    """The memory task's answer, as JSON: an extractive summary (the previous facts plus the
    user's new first-person statements) and each new statement as a fact. A statement replaces
    the known facts of the same slot (``daca.llm.extractive.slot``)."""
    previous = _between(summary_input, prompts.PREVIOUS_SUMMARY_HEADER, prompts.KNOWN_FACTS_HEADER)
    known = _known_facts(
        _between(summary_input, prompts.KNOWN_FACTS_HEADER, prompts.NEW_TURNS_HEADER)
    )
    said = _labelled_statements(_between(summary_input, prompts.NEW_TURNS_HEADER, None))
    summary = merge_facts(
        _sentences(previous),
        [as_statement(sentence) for _, sentence in said],
        max_facts=MAX_SUMMARY_FACTS,
        max_chars=MAX_SUMMARY_CHARS,
    )
    answer = {"summary": " ".join(summary) or NO_FACTS, "facts": _new_facts(known, said)}
    return json.dumps(answer, ensure_ascii=False)


def asks_for_time(text: str) -> bool:
    """Whether ``text`` asks for the current time or date."""
    lowered = normalise(text)
    if not _TIME_WORDS.search(lowered):
        return False
    return lowered.rstrip().endswith("?") or bool(_TIME_REQUEST.search(lowered))


def time_answer(tool_output: str) -> str:
    """The reply once the time tool has answered."""
    return f"The current time is {tool_output.strip()} (UTC, from the get_current_time tool)."


def answer_from_memory(question: str, memory: Memory) -> str | None:
    """A reply quoting the remembered statement that best matches ``question``, if any; for a
    question, else the best memory retrieved from earlier conversations, with its date."""
    if not question.strip():
        return None
    match = best_match(question, memory.facts)
    if match is not None:
        return f'From what you told me earlier: "{as_sentence(match)}" (offline model, from memory)'
    if not is_question(question):
        return None
    asked = normalise(question).strip()
    recalled = next((r for r in memory.recalled if normalise(r.said).strip() != asked), None)
    if recalled is None:
        return None
    return (
        f'On {recalled.day} you told me: "{recalled.said}" '
        "(offline model, from an earlier conversation)"
    )


def acknowledge(memory: Memory) -> str:
    """The fallback reply, greeting the user by name in their preferred style."""
    style = normalise(memory.style or "")
    greeting = next((word for key, word in _GREETINGS.items() if key in style), "Hello")
    who = f"{greeting}, {memory.name}!" if memory.name else f"{greeting}!"
    return (
        f"{who} I'm the offline model (no LLM is configured), so I can't discuss this in depth. "
        "I can tell you the time and recall what you've told me before."
    )
