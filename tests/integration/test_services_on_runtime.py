"""The tutorial's system on the daca runtime: chat, memory, pub/sub and state over real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.conftest import System, run_system
from tests.integration.helpers import eventually, history, publish, turn_event
from tests.runtime.harness import running_sidecar

pytestmark = pytest.mark.redis


async def chat(system: System, user: str, text: str, session: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user, "text": text}
    if session:
        body["metadata"] = {"session_id": session}
    answer = await system.chat.post("/chat/", json=body)
    assert answer.status_code == 200, answer.text
    reply: dict[str, Any] = answer.json()
    return reply


async def test_tutorial_walkthrough(system: System) -> None:
    init = await system.memory.post(
        "/memories/junaid/initialize",
        json={
            "name": "Junaid",
            "preferred_style": "casual",
            "user_summary": "Junaid is a new user.",
        },
    )
    assert init.status_code == 200
    await chat(system, "junaid", "I am planning to go to SF tomorrow.", "s1")
    await chat(system, "junaid", "What time is it?", "s1")
    entries = await eventually(lambda: _has(system, "s1", 4))
    assert [e["role"] for e in entries] == ["user", "assistant"] * 2

    async def summary_changed() -> bool:
        memory = (await system.memory.get("/memories/junaid")).json()
        return "SF" in (memory["user_summary"] or "")

    await eventually(summary_changed)
    reply = await chat(system, "junaid", "Where was I planning to go tomorrow?", "s2")
    assert "SF" in reply["reply"]
    assert reply["metadata"]["session_id"] == "s2"


async def _has(system: System, session: str, count: int) -> list[dict[str, Any]] | None:
    entries = await history(system, session)
    return entries if len(entries) >= count else None


async def test_fifty_concurrent_events_keep_every_entry_exactly_once(system: System) -> None:
    await asyncio.gather(*(publish(system, turn_event("busy", n)) for n in range(50)))
    entries = await eventually(lambda: _has(system, "busy", 100), timeout=30)
    questions = sorted(e["content"] for e in entries if e["role"] == "user")
    assert len(entries) == 100
    assert questions == sorted(f"question {n}" for n in range(50))


async def test_redelivered_event_appends_nothing(system: System) -> None:
    event = turn_event("again", 1, turn_id="fixed-turn")
    for _ in range(3):
        await publish(system, event)
    await publish(system, turn_event("again", 2))  # a later turn shows the others were handled
    entries = await eventually(lambda: _has(system, "again", 4))
    assert [e["content"] for e in entries] == ["question 1", "answer 1", "question 2", "answer 2"]


async def test_malformed_event_is_dead_lettered(system: System) -> None:
    await publish(system, {"event_type": "ConversationUpdated", "user_id": "u1"})

    async def listed() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = (await system.memory.get("/deadletters")).json()["events"]
        return events

    [dead] = await eventually(listed)
    assert dead["data"] == {"event_type": "ConversationUpdated", "user_id": "u1"}
    assert dead["topic"] == "conversations"


async def test_unknown_user_gets_defaults(system: System) -> None:
    answer = await system.memory.get("/memories/never-seen")
    assert answer.status_code == 200
    assert answer.json()["name"] == "never-seen"


async def test_chat_sidecar_stopped_during_publish_loses_no_turn(system: System) -> None:
    await system.chat_sidecar.stop()
    reply = await chat(system, "u2", "I like green tea.", "offline-sidecar")
    assert reply["reply"]  # the user still gets an answer while the sidecar is down
    async with running_sidecar(system.chat_sidecar_config):
        entries = await eventually(lambda: _has(system, "offline-sidecar", 2), timeout=30)
    assert entries[0]["content"] == "I like green tea."


async def test_memory_down_chat_still_answers(tmp_path: Any, redis_url: str) -> None:
    async with run_system(tmp_path, redis_url) as system:
        await system.memory_sidecar.stop()
        reply = await chat(system, "u3", "Hello there")
    assert reply["user_id"] == "u3"
