"""A user's sessions: what a client lists to pick an earlier conversation.

Read from the same bounded tail of the user's turn log that search reads, plus the pending
turns (``daca.memory.userlog.searchable_turns``): two reads, whatever the user's history. A
session whose turns all lie beyond that tail, or have expired (``SESSION_TTL_SECONDS``), is not
listed.
"""

from __future__ import annotations

from daca.contracts.models import MAX_TITLE_CHARS, ConversationTurn, SessionInfo
from daca.dapr.client import DaprClient
from daca.memory import keys
from daca.memory.userlog import searchable_turns


def title(message: str) -> str:
    """A one-line title from a session's first message."""
    line = " ".join(message.split())
    if len(line) <= MAX_TITLE_CHARS:
        return line
    return line[: MAX_TITLE_CHARS - 1].rstrip() + "…"


def sessions_of(newest_first: list[ConversationTurn]) -> list[SessionInfo]:
    """The sessions of the turns, the most recently active first."""
    found: dict[str, SessionInfo] = {}
    for turn in reversed(newest_first):
        known = found.get(turn.session_id)
        if known is None:
            found[turn.session_id] = SessionInfo(
                session_id=turn.session_id,
                title=title(turn.user_message),
                started_at=turn.timestamp,
                last_at=turn.timestamp,
                turns=1,
            )
        else:
            last_at = max(known.last_at, turn.timestamp)
            found[turn.session_id] = known.model_copy(
                update={"last_at": last_at, "turns": known.turns + 1}
            )
    return sorted(found.values(), key=lambda s: s.last_at, reverse=True)


async def user_sessions(client: DaprClient, store: str, user_id: str) -> list[SessionInfo]:
    """The user's sessions, the most recently active first."""
    head_entry, pending_entry = await client.bulk_get_state(
        store, [keys.log_head_key(user_id), keys.pending_key(user_id)]
    )
    turns = await searchable_turns(client, store, user_id, head_entry, pending_entry)
    return sessions_of(turns)
