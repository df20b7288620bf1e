"""The tutorial's system: chat, memory, pub/sub and state over real Redis, on daca and on daprd.

Each test runs once per engine (the ``system`` fixture), so the services are checked on real
daprd exactly as on the daca runtime.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.engines import Engine
from tests.integration.conftest import System, Tokens, run_system
from tests.integration.helpers import eventually, history, publish, turn_event

pytestmark = pytest.mark.redis


async def chat(system: System, user: str, text: str, session: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": user, "text": text}
    if session:
        body["metadata"] = {"session_id": session}
    answer = await system.chat.post("/chat/", json=body)
    assert answer.status_code == 200, answer.text
    reply: dict[str, Any] = answer.json()
    return reply


async def walkthrough(system: System) -> None:
    """The tutorial's session: initialise, three chats, history, summary, recall elsewhere."""
    init = await system.memory.post(
        "/memories/junaid/initialize",
        json={
            "name": "Junaid",
            "preferred_style": "casual",
            "user_summary": "Junaid is a new user.",
        },
    )
    assert init.status_code == 200
    await chat(system, "junaid", "I need to schedule a coding session.", "s1")
    await chat(system, "junaid", "What time is it?", "s1")
    await chat(system, "junaid", "I am planning to go to SF tomorrow.", "s1")
    entries = await eventually(lambda: _has(system, "s1", 6))
    assert len(entries) == 6
    assert [e["role"] for e in entries] == ["user", "assistant"] * 3
    assert entries[4]["content"] == "I am planning to go to SF tomorrow."

    async def summary_rewritten() -> bool:
        memory = (await system.memory.get("/memories/junaid")).json()
        summary = memory["user_summary"] or ""
        return "SF" in summary and summary != "Junaid is a new user."

    await eventually(summary_rewritten)
    # A new session: the chat service reads the memory through service invocation.
    reply = await chat(system, "junaid", "Where was I planning to go tomorrow?", "s2")
    assert "SF" in reply["reply"]
    assert reply["metadata"]["session_id"] == "s2"
    assert len(await eventually(lambda: _has(system, "s2", 2))) == 2
    assert len(await history(system, "s1")) == 6  # the other session is untouched


async def test_tutorial_walkthrough(system: System) -> None:
    await walkthrough(system)


async def test_walkthrough_with_api_tokens(tmp_path: Any, redis_url: str, engine: Engine) -> None:
    """DAPR_API_TOKEN and APP_API_TOKEN on both sidecars and both apps."""
    async with run_system(tmp_path, redis_url, engine, tokens=Tokens()) as system:
        await walkthrough(system)
        # The memory service refuses calls that do not carry the sidecar's APP_API_TOKEN.
        unauthenticated = await system.memory.get(
            "/memories/junaid", headers={"dapr-api-token": "wrong"}
        )
        assert unauthenticated.status_code == 401


async def test_user_registered_is_stored(system: System) -> None:
    answer = await system.chat.post(
        "/users", json={"user_id": "amna", "name": "Amna", "preferred_style": "formal"}
    )
    assert answer.status_code == 202, answer.text

    async def registered() -> dict[str, Any] | None:
        memory: dict[str, Any] = (await system.memory.get("/memories/amna")).json()
        return memory if memory["name"] == "Amna" else None

    memory = await eventually(registered)
    assert memory["preferred_style"] == "formal"


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
    await system.engine.restart(system.chat_sidecar)
    entries = await eventually(lambda: _has(system, "offline-sidecar", 2), timeout=30)
    assert entries[0]["content"] == "I like green tea."


async def test_memory_down_chat_still_answers(
    tmp_path: Any, redis_url: str, engine: Engine
) -> None:
    """The memory service unreachable: the chat still answers (as for a new user), and the turn
    it recorded reaches the memory service once its sidecar is back."""
    async with run_system(tmp_path, redis_url, engine) as system:
        await system.memory_sidecar.stop()
        reply = await chat(system, "u3", "Hello there", "down-1")
        assert reply["user_id"] == "u3" and reply["metadata"]["session_id"] == "down-1"
        assert reply["reply"].strip()
        await system.engine.restart(system.memory_sidecar)
        stored = await eventually(lambda: history(system, "down-1"))
    assert [e["content"] for e in stored] == ["Hello there", reply["reply"]]


async def test_the_next_message_sees_the_previous_turn_at_once(system: System) -> None:
    """Read-your-writes: no delay between the two messages (on daprd the outbox alone takes
    about a second to deliver the first turn to the memory service)."""
    await chat(system, "rw-user", "I am planning to go to SF tomorrow.", "rw")
    reply = await chat(system, "rw-user", "Where was I planning to go tomorrow?", "rw")
    assert "SF" in reply["reply"]


async def test_the_tutorial_session_word_for_word(system: System) -> None:
    """Issue 8's acceptance: the tutorial's messages exactly as its readers type them, the typo
    of the last one included; the new session's answer mentions SF."""
    for text in ("I need to schedule a coding session.", "What time is it?",
                 "Tomorrow we will pack for SF?"):  # fmt: skip
        await chat(system, "junaid", text, "tutorial-1")

    async def searchable() -> list[dict[str, Any]] | None:
        params = {"q": "Where was I planning to go tommorrow?", "k": "5"}
        answer = await system.memory.get("/memories/junaid/search", params=params)
        results: list[dict[str, Any]] = answer.json()["results"]
        return results or None

    [best, *_] = await eventually(searchable)
    assert "pack for SF" in best["text"] and best["session_id"] == "tutorial-1"
    reply = await chat(system, "junaid", "Where was I planning to go tommorrow?", "tutorial-2")
    assert "SF" in reply["reply"], reply

    async def extracted() -> list[dict[str, Any]] | None:
        answer = await system.memory.get("/memories/junaid/facts")
        facts: list[dict[str, Any]] = answer.json()["facts"]
        return facts if len(facts) >= 2 else None

    facts = await eventually(extracted)
    texts = [fact["text"] for fact in facts]
    assert texts[:2] == ["I need to schedule a coding session.", "Tomorrow we will pack for SF."]
    assert all(fact["session_id"] == "tutorial-1" for fact in facts[:2])
    assert "What time is it?" not in " ".join(texts)


def redis_keys(redis_address: str) -> set[str]:
    """Every key in the test's Redis, decoded."""
    import redis

    host, port = redis_address.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port))
    try:
        return {key.decode() for key in client.keys("*")}
    finally:
        client.close()


async def test_forgetting_a_user_leaves_no_key_of_theirs(system: System, redis_url: str) -> None:
    """``DELETE /memories/{user}`` on the chat service: the memory service's records and the
    chat's own, listed in Redis before and after; another user's stay."""
    await chat(system, "bob", "I live in Oslo.", "bob-1")
    for session in ("forget-1", "forget-2"):
        for text in ("I have a cat named Tom.", "What time is it?"):
            await chat(system, "mallory", text, session)

    async def summarised(user: str) -> bool | None:
        metadata = (await system.memory.get(f"/memories/{user}")).json()
        return True if metadata["summary_turn_count"] >= {"bob": 1, "mallory": 4}[user] else None

    await eventually(lambda: summarised("mallory"))
    await eventually(lambda: summarised("bob"))
    await chat(system, "mallory", "One more, still pending.", "forget-3")

    async def stored() -> bool:
        return len(await history(system, "forget-3")) == 2

    await eventually(stored)

    def of(user: str, sessions: tuple[str, ...]) -> set[str]:
        return {k for k in redis_keys(redis_url) if user in k or any(s in k for s in sessions)}

    mallory = ("forget-1", "forget-2", "forget-3")
    before, bobs = of("mallory", mallory), of("bob", ("bob-1",))
    kinds = {key.split("||")[-1].split(":")[0] for key in before}
    assert {"user", "pending", "facts", "log", "session", "turn"} <= kinds, before
    answer = await system.chat.delete("/memories/mallory")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "forgotten", "user_id": "mallory", "sessions": list(mallory)}
    assert of("mallory", mallory) == set()
    assert of("bob", ("bob-1",)) == bobs
    facts = (await system.memory.get("/memories/mallory/facts")).json()["facts"]
    assert facts == []
    reply = await chat(system, "mallory", "Do I have a cat named Tom?", "forget-4")
    assert "Tom" not in reply["reply"]


async def test_expired_sessions_leave_nothing_in_history_or_search(
    tmp_path: Path, redis_url: str, engine: Engine
) -> None:
    """``SESSION_TTL_SECONDS``: a session's turns expire from the store (Dapr's
    ``ttlInSeconds``) and from the search log; the facts drawn from them stay."""
    ttl = {"SESSION_TTL_SECONDS": 3}
    async with run_system(tmp_path, redis_url, engine, memory_env=ttl, chat_env=ttl) as system:
        await chat(system, "tia", "I keep bees in my garden.", "ttl-1")

        async def found() -> list[dict[str, Any]] | None:
            answer = await system.memory.get("/memories/tia/search", params={"q": "bees"})
            results: list[dict[str, Any]] = answer.json()["results"]
            facts = (await system.memory.get("/memories/tia/facts")).json()["facts"]
            return results if results and facts else None

        await eventually(found)
        session_keys = {k for k in redis_keys(redis_url) if "ttl-1" in k}
        assert any(":page:" in k for k in session_keys) and any("turn:" in k for k in session_keys)

        async def expired() -> bool:
            answer = await system.memory.get("/memories/tia/search", params={"q": "bees"})
            kinds = {r["kind"] for r in answer.json()["results"]}
            history = (await system.memory.get("/conversations/ttl-1")).json()["history"]
            gone = not any("ttl-1" in k for k in redis_keys(redis_url))
            return kinds == {"fact"} and history == [] and gone

        await eventually(expired, timeout=30)
