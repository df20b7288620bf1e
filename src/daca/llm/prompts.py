"""The prompts both services give the LLM, and the layout the offline model reads back.

The chat instructions carry the user's name, preferred style, summary, the memories retrieved
for this message (from any session) and the recent turns of the session. Memories (best first,
up to a third of the token budget) and recent turns (newest first) are packed into a token
budget of about four characters a token; recent turns are rendered oldest-first. Message text is
flattened to one line, so a message cannot forge a section header.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from daca.contracts.models import (
    ConversationEntry,
    ConversationTurn,
    SearchResult,
    UserMetadata,
)
from daca.llm.tools import CURRENT_TIME_TOOL_NAME

SUMMARY_MARKER = "[daca:summary-task]"
"""Opens the summary instructions; the offline model recognises the summary task by it."""

NAME_PREFIX = "User's name: "
STYLE_PREFIX = "Preferred style: "
SUMMARY_HEADER = "What you remember about the user:"
RECENT_HEADER = "Recent conversation (oldest first):"
RELEVANT_HEADER = "Memories from earlier conversations that may be relevant (best first):"
MEMORY_LINE = "- on "
SAID = ", the user said: "
REPLIED = " | you replied: "
#: How much of a retrieved memory's text goes into the instructions.
MEMORY_CHARS = 500
PREVIOUS_SUMMARY_HEADER = "Previous summary:"
NEW_TURNS_HEADER = "New turns:"
KNOWN_FACTS_HEADER = "Known facts:"
USER_LINE = "- user: "
ASSISTANT_LINE = "- assistant: "
UNKNOWN = "(unknown)"
NOTHING_YET = "(nothing yet)"

SUMMARY_INSTRUCTIONS = (
    f"{SUMMARY_MARKER} You keep the long-term memory of one user: a short summary and a list "
    "of atomic facts. You get the previous summary, the facts already known (each with its id) "
    "and the new conversation turns (each with its id and date). Answer with ONLY a JSON object "
    'of this shape: {"summary": "...", "facts": [{"text": "...", "turns": ["t1"], '
    '"supersedes": ["f3"]}]}.\n'
    "summary: the updated summary. Keep every fact of the previous summary that is still true, "
    "add what the user said about themselves (name, plans, preferences, goals, circumstances), "
    "and leave out small talk and the assistant's own words; at most ten short sentences of "
    "plain text.\n"
    "facts: only the NEW facts the new turns state about the user or the people and things in "
    "their life: plans, preferences, people, places, dates, events, possessions. One short, "
    'self-contained statement per fact, naming the user as "the user", with an absolute '
    "date when the turn gives a relative one (use the turn's date). A plan or statement "
    'phrased as a question ("Tomorrow we will pack for SF?") is a fact; a real question is '
    "not. turns: the ids of the turns the fact comes from. supersedes: the ids of known facts "
    "this fact contradicts or replaces (a new home replaces the old one), else []. Do not "
    'repeat a known fact. With nothing new, answer "facts": [].'
)

_ROLE_LINES = {"user": USER_LINE, "assistant": ASSISTANT_LINE}


def estimate_tokens(text: str) -> int:
    """A rough token count: about four characters a token."""
    return (len(text) + 3) // 4


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


def _entry_line(entry: ConversationEntry) -> str:
    """One history entry as one line of the recent-conversation section."""
    return f"{_ROLE_LINES[entry.role]}{one_line(entry.content)}"


def pack_recent(recent: Sequence[ConversationEntry], token_budget: int) -> list[str]:
    """The newest entries whose lines fit ``token_budget``, rendered oldest-first."""
    packed: list[str] = []
    used = 0
    for entry in reversed(recent):
        line = _entry_line(entry)
        used += estimate_tokens(line)
        if used > token_budget:
            break
        packed.append(line)
    return packed[::-1]


def _style_sentence(style: str | None) -> str:
    """How to answer, given the user's preferred style."""
    manner = f"a {one_line(style)}" if style else "a clear, friendly"
    return f"Respond in {manner} way."


def _preamble(style: str | None) -> str:
    """The role, style and tool guidance that open the chat instructions."""
    return (
        "You are a helpful assistant with long-term memory of the user. "
        f"{_style_sentence(style)} If the user asks for the current time or date, call the "
        f"{CURRENT_TIME_TOOL_NAME} tool. Use what you remember about the user when it helps, "
        "and never invent facts about them."
    )


def _section(header: str, lines: Iterable[str]) -> str:
    """A header followed by its lines (or a placeholder when there are none)."""
    body = "\n".join(lines) or NOTHING_YET
    return f"{header}\n{body}"


def memory_line(memory: SearchResult) -> str:
    """One retrieved memory as one line: when, what the user said, what was answered."""
    day = memory.timestamp[:10]
    said = clip(one_line(memory.text), MEMORY_CHARS)
    reply = clip(one_line(memory.reply or ""), MEMORY_CHARS)
    return f"{MEMORY_LINE}{day}{SAID}{said}" + (f"{REPLIED}{reply}" if reply else "")


def pack_memories(memories: Sequence[SearchResult], token_budget: int) -> list[str]:
    """The best memories whose lines fit ``token_budget``, best first."""
    packed, used = [], 0
    for memory in memories:
        line = memory_line(memory)
        used += estimate_tokens(line)
        if used > token_budget:
            break
        packed.append(line)
    return packed


def build_chat_instructions(
    metadata: UserMetadata,
    recent: Sequence[ConversationEntry],
    *,
    token_budget: int,
    memories: Sequence[SearchResult] = (),
) -> str:
    """The chat agent's instructions: who the user is, what is known, the memories retrieved
    for this message, the recent turns. The budget is shared: memories get up to a third."""
    summary = metadata.user_summary.strip() if metadata.user_summary else ""
    relevant = pack_memories(memories, token_budget // 3)
    used = sum(estimate_tokens(line) for line in relevant)
    parts = [
        _preamble(metadata.preferred_style),
        f"{NAME_PREFIX}{one_line(metadata.name or '') or UNKNOWN}\n"
        f"{STYLE_PREFIX}{one_line(metadata.preferred_style or '') or UNKNOWN}",
        _section(SUMMARY_HEADER, [summary] if summary else []),
        _section(RELEVANT_HEADER, relevant),
        _section(RECENT_HEADER, pack_recent(recent, token_budget - used)),
    ]
    return "\n\n".join(parts)


#: How much of each message of a turn goes into the summary prompt: a summary keeps facts, and
#: one long paste must not make the prompt (and its cost) grow without bound.
SUMMARY_CHARS_PER_MESSAGE = 2_000


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


def turn_label(index: int) -> str:
    """The id the memory prompt gives the ``index``-th new turn (``t1``, ``t2``, ...)."""
    return f"t{index + 1}"


def fact_line(fact_id: str, text: str) -> str:
    """One known fact as the memory prompt lists it."""
    return f"- [{fact_id}] {one_line(text)}"


def _turn_lines(turns: Sequence[ConversationTurn]) -> Iterable[str]:
    """The lines of the new-turns section, oldest turn first: its id and date, then its two
    messages, each clipped."""
    for index, turn in enumerate(turns):
        yield f"[{turn_label(index)}] {turn.timestamp[:10]}"
        yield f"{USER_LINE}{clip(one_line(turn.user_message), SUMMARY_CHARS_PER_MESSAGE)}"
        yield f"{ASSISTANT_LINE}{clip(one_line(turn.assistant_reply), SUMMARY_CHARS_PER_MESSAGE)}"


def build_summary_input(
    previous_summary: str | None,
    turns: Sequence[ConversationTurn],
    known_facts: Sequence[tuple[str, str]] = (),
) -> str:
    """The memory task's input: the previous summary, the known facts as ``(id, text)`` and
    the new turns."""
    previous = previous_summary.strip() if previous_summary else ""
    return "\n\n".join(
        [
            _section(PREVIOUS_SUMMARY_HEADER, [previous] if previous else []),
            _section(KNOWN_FACTS_HEADER, [fact_line(i, text) for i, text in known_facts]),
            _section(NEW_TURNS_HEADER, _turn_lines(turns)),
        ]
    )
