"""Validation of the shared wire models."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from daca.contracts import (
    CloudEvent,
    ConversationEntry,
    ConversationEvent,
    ConversationHistory,
    ConversationUpdated,
    Identifier,
    UserMetadata,
    UserRegistered,
)

IDS: TypeAdapter[str] = TypeAdapter(Identifier)
EVENTS: TypeAdapter[Any] = TypeAdapter(ConversationEvent)


@pytest.mark.parametrize(
    "value", ["u", "user-1", "x" * 128, "junaid@example.com", "a.b_c~d+e=f", "0", "S1"]
)
def test_valid_identifiers(value: str) -> None:
    assert IDS.validate_python(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "x" * 129, "a||b", "a|b", "a:b", "x:page:0", "r/a", "a b", "a?b", "a#b", "a%2F",
     ".", "..", "-x", "a\nb", "a\x00", "tab\tid", "é"],
)  # fmt: skip
def test_invalid_identifiers(value: str) -> None:
    with pytest.raises(ValidationError, match="letters, digits and"):
        IDS.validate_python(value)


def test_identifier_schema_states_the_rule() -> None:
    schema = IDS.json_schema()
    assert schema["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._~@+=-]{0,127}$"
    assert (schema["minLength"], schema["maxLength"]) == (1, 128)


def test_tutorial_event_without_turn_id_or_timestamp() -> None:
    event = ConversationUpdated.model_validate(
        {
            "event_type": "ConversationUpdated",
            "user_id": "junaid",
            "session_id": "s1",
            "user_message": "Hi",
            "assistant_reply": "Hello",
        }
    )
    assert event.turn_id is None
    assert event.timestamp


def test_event_union_discriminates() -> None:
    event = EVENTS.validate_python({"event_type": "UserRegistered", "user_id": "u", "name": "U"})
    assert isinstance(event, UserRegistered)
    with pytest.raises(ValidationError):
        EVENTS.validate_python({"event_type": "Other", "user_id": "u"})


def test_event_rejects_bad_ids_and_timestamps() -> None:
    base = {"user_id": "u", "session_id": "s", "user_message": "m", "assistant_reply": "r"}
    with pytest.raises(ValidationError):
        ConversationUpdated.model_validate(base | {"session_id": "a||b"})
    with pytest.raises(ValidationError):
        ConversationUpdated.model_validate(base | {"timestamp": "yesterday"})
    ok = ConversationUpdated.model_validate(base | {"timestamp": "2025-04-07T15:00:00Z"})
    assert ok.timestamp == "2025-04-07T15:00:00Z"


def test_cloud_event_keeps_extensions() -> None:
    envelope = CloudEvent.model_validate(
        {"id": "1", "traceid": "t", "data": {"event_type": "UserRegistered", "user_id": "u"}}
    )
    assert isinstance(envelope.data, UserRegistered)
    assert envelope.model_dump()["traceid"] == "t"


def test_entry_roles_and_history_defaults() -> None:
    with pytest.raises(ValidationError):
        ConversationEntry.model_validate({"role": "system", "content": "x"})
    history = ConversationHistory(session_id="s")
    assert (history.history, history.total_entries) == ([], 0)


def test_user_metadata_reads_tutorial_shape() -> None:
    data = {"name": "Junaid", "preferred_style": "formal", "goal": "learn", "extra": 1}
    metadata = UserMetadata.model_validate(data)
    assert (metadata.name, metadata.goal, metadata.user_summary) == ("Junaid", "learn", None)
    assert metadata.summary_turn_count == 0
