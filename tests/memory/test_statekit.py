"""Reading records (``daca.memory.statekit.parse``): a frozen record's parse is shared while
the value read stays the same, and never outlives a change, a corruption or a deletion."""

from __future__ import annotations

import pytest

from daca.dapr.models import StateEntry
from daca.memory.errors import CorruptRecordError
from daca.memory.records import LogPage, PendingTurns, SessionHead
from daca.memory.statekit import forget_cached, parse


def _turn(n: int, text: str = "hello") -> dict[str, object]:
    return {
        "session_id": "s1",
        "turn_id": f"t{n}",
        "user_message": f"{text} {n}",
        "assistant_reply": "hi",
        "timestamp": "2026-12-03T10:00:00+00:00",
    }


def _entry(key: str, *turns: dict[str, object], etag: str = "1") -> StateEntry:
    return StateEntry(key=key, value={"turns": [dict(t) for t in turns]}, etag=etag)


def test_an_unchanged_page_is_parsed_once_and_a_changed_one_again() -> None:
    key = "log:statekit-a:page:0"
    first = parse(LogPage, _entry(key, _turn(1), _turn(2)))
    assert parse(LogPage, _entry(key, _turn(1), _turn(2), etag="2")) is first
    changed = parse(LogPage, _entry(key, _turn(1), _turn(2, "bye")))
    assert changed is not first and changed is not None
    assert [t.user_message for t in changed.turns] == ["hello 1", "bye 2"]
    other_key = parse(LogPage, _entry("log:statekit-b:page:0", _turn(1), _turn(2)))
    assert other_key is not first and other_key == first


def test_a_corrupted_page_is_an_error_even_after_a_good_read() -> None:
    key = "log:statekit-c:page:0"
    assert parse(LogPage, _entry(key, _turn(1))) is not None
    with pytest.raises(CorruptRecordError):
        parse(LogPage, _entry(key, {"turn_id": "no session"}))


def test_a_forgotten_page_is_parsed_anew() -> None:
    key = "log:statekit-d:page:0"
    first = parse(LogPage, _entry(key, _turn(1)))
    forget_cached([key])
    again = parse(LogPage, _entry(key, _turn(1)))
    assert again == first and again is not first


def test_a_record_that_is_not_frozen_is_never_shared() -> None:
    entry = StateEntry(key="session:statekit-e", value={"session_id": "s1", "page_size": 10})
    assert parse(SessionHead, entry) is not parse(SessionHead, entry)


def test_the_pending_turns_are_parsed_once_for_both_parts_of_a_context_read() -> None:
    entry = _entry("pending:statekit-f", _turn(1))
    assert parse(PendingTurns, entry) is parse(PendingTurns, entry)
