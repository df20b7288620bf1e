"""State keys of the memory service, built from validated ids (``daca.contracts.ids``).

=============================  ===========================================================
``user:{user_id}``             ``UserMetadata`` (the tutorial's shape plus summary bookkeeping)
``pending:{user_id}``          ``PendingTurns``: turns stored but not yet summarised
``session:{session_id}``       ``SessionHead``: entry count and page size of the history
``session:{sid}:page:{n}``     ``HistoryPage``: up to ``page_size`` entries and their turn ids
``turn:{sid}:{turn_id}``       ``TurnMarker``: where a turn was appended (idempotency)
``log:{user_id}``              ``LogHead``: how many summarised turns the user's log holds
``log:{user_id}:page:{n}``     ``LogPage``: the user's summarised turns, any session (search)
``facts:{user_id}``            ``FactBook``: the facts extracted from the user's turns
``deadletters``                ``DeadLetters``: the most recent dead-lettered CloudEvents
=============================  ===========================================================

An id never contains ``:``, so ``:`` separates the parts of a key unambiguously: every key
names exactly one record (``parse_key`` recovers it), and two different records never share a
key, whatever their ids.
"""

from __future__ import annotations

from daca.contracts.ids import validate_identifier

DEAD_LETTERS_KEY = "deadletters"
SEPARATOR = ":"


def _key(*parts: str) -> str:
    return SEPARATOR.join(parts)


def user_key(user_id: str) -> str:
    """The key of a user's metadata."""
    return _key("user", validate_identifier(user_id))


def pending_key(user_id: str) -> str:
    """The key of a user's not-yet-summarised turns."""
    return _key("pending", validate_identifier(user_id))


def head_key(session_id: str) -> str:
    """The key of a session's head record."""
    return _key("session", validate_identifier(session_id))


def page_key(session_id: str, page: int) -> str:
    """The key of page ``page`` of a session's history."""
    if page < 0:
        raise ValueError("a page number is not negative")
    return _key("session", validate_identifier(session_id), "page", str(page))


def marker_key(session_id: str, turn_id: str) -> str:
    """The key of the idempotency marker of one turn."""
    return _key("turn", validate_identifier(session_id), validate_identifier(turn_id))


def log_head_key(user_id: str) -> str:
    """The key of the head of a user's turn log (what search reads)."""
    return _key("log", validate_identifier(user_id))


def log_page_key(user_id: str, page: int) -> str:
    """The key of page ``page`` of a user's turn log."""
    if page < 0:
        raise ValueError("a page number is not negative")
    return _key("log", validate_identifier(user_id), "page", str(page))


def facts_key(user_id: str) -> str:
    """The key of a user's facts."""
    return _key("facts", validate_identifier(user_id))


def parse_key(key: str) -> tuple[str, ...]:
    """The record a key names, as ``(kind, *ids)``: the inverse of the functions above."""
    if key == DEAD_LETTERS_KEY:
        return (DEAD_LETTERS_KEY,)
    kind, *parts = key.split(SEPARATOR)
    shapes = {"user": 1, "pending": 1, "session": 1, "turn": 2, "log": 1, "facts": 1}
    if kind in ("session", "log") and len(parts) == 3 and parts[1] == "page" and parts[2].isdigit():
        return (
            f"{kind}-page" if kind == "log" else "page",
            validate_identifier(parts[0]),
            parts[2],
        )
    if shapes.get(kind) != len(parts):
        raise ValueError(f"not a memory-service key: {key!r}")
    return (kind, *(validate_identifier(part) for part in parts))
