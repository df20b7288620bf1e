"""Holes found by hostile testing (issue 7), reproduced over HTTP on both engines.

Ids that would collide in state keys are refused everywhere; an unreadable stored record, a
reused turn id with other content and an id the HTTP routes refuse are all dead-lettered (and
kept) instead of a 500, a silent drop or a turn that can never be read.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.helpers import eventually, history, publish, turn_event

pytestmark = pytest.mark.redis

RULE = "letters, digits and . _ ~ @ + = -"


async def chat(system: System, user: str, session: str) -> httpx.Response:
    body = {"user_id": user, "text": "hello", "metadata": {"session_id": session}}
    return await system.chat.post("/chat/", json=body)


async def dead_letters(system: System, count: int) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]] | None:
        events: list[dict[str, Any]] = (await system.memory.get("/deadletters")).json()["events"]
        return events if len(events) >= count else None

    found: list[dict[str, Any]] = await eventually(listed)
    return found


async def test_ids_that_would_collide_in_keys_are_refused(system: System) -> None:
    for _ in range(3):
        refused = await chat(system, "bob", "x:page:0")
        assert refused.status_code == 422, refused.text
        assert RULE in refused.text
    assert (await chat(system, "eve", "x")).status_code == 200
    read = await system.memory.get("/conversations/x:page:0")
    assert read.status_code == 422, read.text
    assert RULE in read.text
    assert (await chat(system, "bob", "x-page-0")).status_code == 200
    assert len(await eventually(lambda: _has(system, "x", 2))) == 2
    assert len(await eventually(lambda: _has(system, "x-page-0", 2))) == 2


async def _has(system: System, session: str, count: int) -> list[dict[str, Any]] | None:
    entries = await history(system, session)
    return entries if len(entries) >= count else None


async def test_an_event_with_an_id_the_routes_refuse_is_dead_lettered(system: System) -> None:
    await publish(system, turn_event("r/a", 1))
    [dead] = await dead_letters(system, 1)
    assert dead["data"]["session_id"] == "r/a"
    assert (await system.memory.get("/conversations/r")).json()["total_entries"] == 0


async def test_a_reused_turn_id_with_other_content_is_dead_lettered(system: System) -> None:
    await publish(system, turn_event("reuse", 1, turn_id="same-turn"))
    await eventually(lambda: _has(system, "reuse", 2))
    await publish(system, turn_event("reuse", 2, turn_id="same-turn"))
    [dead] = await dead_letters(system, 1)
    assert dead["data"]["user_message"] == "question 2"
    entries = await history(system, "reuse")
    assert [e["content"] for e in entries] == ["question 1", "answer 1"]
    # The exact same turn again is still a harmless duplicate, not a conflict.
    await publish(system, turn_event("reuse", 1, turn_id="same-turn"))
    await publish(system, turn_event("reuse", 3))
    await eventually(lambda: _has(system, "reuse", 4))
    assert len(await dead_letters(system, 1)) == 1


async def test_an_unreadable_stored_record_is_a_clear_error_and_left_alone(
    system: System,
) -> None:
    sidecar = f"http://127.0.0.1:{system.memory_sidecar.http_port}/v1.0/state/statestore"
    async with httpx.AsyncClient(headers=system.sidecar_headers) as client:
        saved = await client.post(sidecar, json=[{"key": "session:broken", "value": "junk"}])
        assert saved.status_code == 204, saved.text
        read = await system.memory.get("/conversations/broken")
        assert read.status_code == 500
        assert read.json() == {
            "detail": "stored record 'session:broken' is unreadable as SessionHead: it was "
            "written by something else or is damaged; the memory service leaves it untouched"
        }
        await publish(system, turn_event("broken", 1))
        [dead] = await dead_letters(system, 1)
        assert dead["data"]["session_id"] == "broken"
        assert (await client.get(f"{sidecar}/session:broken")).json() == "junk"


async def test_oversized_input_is_refused_with_the_limit(system: System) -> None:
    too_long = await system.memory.post(
        "/memories/big/initialize", json={"user_summary": "x" * 5_000_000}
    )
    assert too_long.status_code == 422
    [error] = too_long.json()["detail"]
    assert error["loc"] == ["body", "user_summary"]
    assert "at most 4000 characters" in error["msg"]
    for body in ({"summary_turn_count": False}, {"nmae": "typo"}):
        refused = await system.memory.post("/memories/big/initialize", json=body)
        assert refused.status_code == 422, body
        assert refused.json()["detail"][0]["type"] == "extra_forbidden"
    tags = await system.chat.post(
        "/chat/", json={"user_id": "big", "text": "hi", "tags": ["t"] * 100_000}
    )
    assert tags.status_code == 422
    assert tags.json()["detail"][0]["loc"] == ["body", "tags"]
    assert (await system.memory.get("/memories/big")).json()["user_summary"] is None


async def test_an_oversized_event_is_dead_lettered_not_stored(system: System) -> None:
    event = turn_event("huge", 1) | {"user_message": "x" * 100_000}
    await publish(system, event)
    [dead] = await dead_letters(system, 1)
    # Kept in the dead-letter store as its envelope and a bounded preview.
    assert dead["topic"] == "conversations"
    assert dead["data"]["truncated"] is True
    assert len(dead["data"]["preview"]) == 1_000
    assert (await system.memory.get("/conversations/huge")).json()["total_entries"] == 0


async def test_deeply_nested_dead_letter_is_kept_not_a_500(system: System) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    answer = await system.memory.post(
        "/deadletters", content=nested, headers={"content-type": "application/cloudevents+json"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "SUCCESS"}
    [dead] = await dead_letters(system, 1)
    assert dead["data"]["truncated"] is True


async def test_dead_letters_replay_idempotently(system: System) -> None:
    valid = {
        "id": "dead-1",
        "specversion": "1.0",
        "source": "chat-service",
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/json",
        "topic": "conversations",
        "pubsubname": "pubsub",
        "data": {k: v for k, v in turn_event("replayed", 1).items() if k != "turn_id"},
    }
    malformed = {"id": "dead-2", "data": {"event_type": "ConversationUpdated"}}
    headers = {"content-type": "application/cloudevents+json"}
    for event in (valid, malformed):
        kept = await system.memory.post("/deadletters", json=event, headers=headers)
        assert kept.json() == {"status": "SUCCESS"}
    assert len(await dead_letters(system, 2)) == 2
    first = await system.memory.post("/deadletters/replay")
    assert first.status_code == 200, first.text
    assert first.json() == {"replayed": 1, "skipped": 1}
    entries = await eventually(lambda: _has(system, "replayed", 2))
    assert [e["content"] for e in entries] == ["question 1", "answer 1"]
    # The same event again (a second replay of a kept copy, or a redelivery) adds nothing.
    await system.memory.post("/deadletters", json=valid, headers=headers)
    assert (await system.memory.post("/deadletters/replay")).json()["replayed"] == 1
    await publish(system, turn_event("replayed", 2))
    entries = await eventually(lambda: _has(system, "replayed", 4))
    assert [e["content"] for e in entries][::2] == ["question 1", "question 2"]
    remaining = (await system.memory.get("/deadletters")).json()["events"]
    assert [event["id"] for event in remaining] == ["dead-2"]
