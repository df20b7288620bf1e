"""State keys of the memory service (ids are validated ``Identifier`` values).

=============================  ===========================================================
``user:{user_id}``             ``UserMetadata`` (the tutorial's shape plus summary bookkeeping)
``pending:{user_id}``          ``PendingTurns``: turns stored but not yet summarised
``session:{session_id}``       ``SessionHead``: entry count and page size of the history
``session:{sid}:page:{n}``     ``HistoryPage``: up to ``page_size`` entries and their turn ids
``turn:{sid}:{turn_id}``       ``TurnMarker``: where a turn was appended (idempotency)
``deadletters``                ``DeadLetters``: the most recent dead-lettered CloudEvents
=============================  ===========================================================
"""

from __future__ import annotations

from daca.contracts.models import validate_identifier

DEAD_LETTERS_KEY = "deadletters"


def user_key(user_id: str) -> str:
    """The key of a user's metadata."""
    return f"user:{validate_identifier(user_id)}"


def pending_key(user_id: str) -> str:
    """The key of a user's not-yet-summarised turns."""
    return f"pending:{validate_identifier(user_id)}"


def head_key(session_id: str) -> str:
    """The key of a session's head record."""
    return f"session:{validate_identifier(session_id)}"


def page_key(session_id: str, page: int) -> str:
    """The key of page ``page`` of a session's history."""
    return f"session:{validate_identifier(session_id)}:page:{page}"


def marker_key(session_id: str, turn_id: str) -> str:
    """The key of the idempotency marker of one turn."""
    return f"turn:{validate_identifier(session_id)}:{validate_identifier(turn_id)}"
