"""``POST /conversations``: appending turns, idempotency, statuses, paging and reads."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import (
    FakeWriter,
    conversation,
    deliver,
    envelope,
    memory_settings,
    running_app,
)


async def history(client: httpx.AsyncClient, session: str = "s1", **params: int) -> dict[str, Any]:
    response = await client.get(f"/conversations/{session}", params=params)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_event_appends_user_and_assistant_entries(client: httpx.AsyncClient) -> None:
    assert await deliver(client, envelope(conversation(text="hello"))) == "SUCCESS"
    body = await history(client)
    assert body["session_id"] == "s1"
    assert body["total_entries"] == 2
    assert [(e["role"], e["content"]) for e in body["history"]] == [
        ("user", "user: hello"),
        ("assistant", "assistant: hello"),
    ]
    assert body["history"][0]["timestamp"] == "2025-04-07T15:00:00+00:00"


async def test_unknown_session_is_empty(client: httpx.AsyncClient) -> None:
    assert await history(client, "nobody") == {
        "session_id": "nobody",
        "history": [],
        "total_entries": 0,
    }


async def test_redelivery_appends_nothing(client: httpx.AsyncClient) -> None:
    event = envelope(conversation(turn="t1"))
    assert await deliver(client, event) == "SUCCESS"
    assert await deliver(client, event) == "SUCCESS"
    assert await deliver(client, envelope(conversation(turn="t1"))) == "SUCCESS"
    assert (await history(client))["total_entries"] == 2
    metrics = (await client.get("/healthz")).json()["metrics"]
    assert (metrics["events_handled"], metrics["duplicates_skipped"]) == (3, 2)


async def test_redelivery_of_an_old_turn_on_an_earlier_page(client: httpx.AsyncClient) -> None:
    for number in range(5):
        await deliver(client, envelope(conversation(turn=f"t{number}")))
    assert await deliver(client, envelope(conversation(turn="t0"))) == "SUCCESS"
    assert (await history(client))["total_entries"] == 10


async def test_tutorial_event_without_turn_id(client: httpx.AsyncClient) -> None:
    tutorial = {
        "user_id": "junaid",
        "session_id": "s1",
        "event_type": "ConversationUpdated",
        "user_message": "Hi",
        "assistant_reply": "Hello Junaid",
    }
    first = envelope(tutorial, event_id="ce-1")
    assert await deliver(client, first) == "SUCCESS"
    assert await deliver(client, first) == "SUCCESS"
    assert (await history(client))["total_entries"] == 2
    assert await deliver(client, envelope(tutorial, event_id="ce-2")) == "SUCCESS"
    assert (await history(client))["total_entries"] == 4


async def test_event_without_any_id_is_deduplicated_by_content(client: httpx.AsyncClient) -> None:
    event = envelope(conversation(turn=None))
    del event["id"]
    assert await deliver(client, event) == "SUCCESS"
    assert await deliver(client, event) == "SUCCESS"
    assert (await history(client))["total_entries"] == 2


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        {"id": "1"},
        envelope({"event_type": "SomethingElse", "user_id": "u"}),
        envelope({"event_type": "ConversationUpdated", "user_id": "u", "session_id": "s"}),
        envelope(conversation(session="a||b")),
        envelope(conversation(user="bad\nid")),
        envelope(conversation() | {"timestamp": "not a time"}),
        envelope("plain text data"),
    ],
)
async def test_malformed_events_are_dropped(
    client: httpx.AsyncClient, sidecar: FakeSidecar, body: object
) -> None:
    assert await deliver(client, body) == "DROP"
    assert sidecar.keys() == set()
    assert (await client.get("/healthz")).json()["metrics"]["events_dropped"] == 1


async def test_sidecar_down_is_retry(client: httpx.AsyncClient, sidecar: FakeSidecar) -> None:
    sidecar.down = True
    assert await deliver(client, envelope(conversation())) == "RETRY"
    sidecar.down = False
    assert await deliver(client, envelope(conversation())) == "SUCCESS"
    assert (await history(client))["total_entries"] == 2
    assert (await client.get("/healthz")).json()["metrics"]["events_retried"] == 1


async def test_failing_transactions_exhaust_retries_and_answer_retry(sidecar: FakeSidecar) -> None:
    async with running_app(sidecar, FakeWriter(), memory_settings(append_max_attempts=3)) as client:
        sidecar.fail_transactions = True
        assert await deliver(client, envelope(conversation())) == "RETRY"
        sidecar.fail_transactions = False
        assert await deliver(client, envelope(conversation())) == "SUCCESS"
        assert (await history(client))["total_entries"] == 2


async def test_fifty_concurrent_events_keep_every_entry_once(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """Two replicas share the sidecar: within one, appends of a user take turns; across the
    two, only the ETags keep every turn, so conflicts must happen and must be retried."""
    events = [envelope(conversation(turn=f"t{n:02d}", text=str(n))) for n in range(50)]
    async with (
        running_app(sidecar, writer, memory_settings()) as first,
        running_app(sidecar, writer, memory_settings()) as second,
    ):
        replicas = (first, second)
        statuses = await asyncio.gather(
            *(deliver(replicas[n % 2], event) for n, event in enumerate(events))
        )
        body = await history(first)
    assert statuses == ["SUCCESS"] * 50
    assert body["total_entries"] == 100
    contents = [entry["content"] for entry in body["history"]]
    assert sorted(contents) == sorted(
        f"{role}: {n}" for n in range(50) for role in ("user", "assistant")
    )
    for user, reply in zip(contents[::2], contents[1::2], strict=True):
        assert reply == user.replace("user:", "assistant:")
    assert sidecar.transaction_conflicts > 0
    pending = sidecar.value("pending:alice")
    assert pending is not None and len(pending["turns"]) <= 50


async def test_read_with_limit_across_page_boundaries(client: httpx.AsyncClient) -> None:
    for number in range(7):
        await deliver(client, envelope(conversation(turn=f"t{number}", text=str(number))))
    full = await history(client)
    assert full["total_entries"] == 14
    assert [e["content"] for e in full["history"][::2]] == [f"user: {n}" for n in range(7)]
    for limit in (1, 3, 4, 5, 9, 14, 50):
        body = await history(client, limit=limit)
        assert body["history"] == full["history"][-limit:]
        assert body["total_entries"] == 14
    assert (await history(client, limit=0))["history"] == []


async def test_pages_have_fixed_size(client: httpx.AsyncClient, sidecar: FakeSidecar) -> None:
    for number in range(3):
        await deliver(client, envelope(conversation(turn=f"t{number}")))
    assert sidecar.value("session:s1")["entry_count"] == 6
    assert len(sidecar.value("session:s1:page:0")["entries"]) == 4
    assert len(sidecar.value("session:s1:page:1")["entries"]) == 2
    assert sidecar.value("turn:s1:t2") == {"user_id": "alice", "index": 4}


async def test_stale_marker_from_a_partial_transaction_is_not_trusted(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    await deliver(client, envelope(conversation(turn="t0")))
    sidecar.put("turn:s1:t1", {"user_id": "alice", "index": 2})
    assert await deliver(client, envelope(conversation(turn="t1", text="late"))) == "SUCCESS"
    body = await history(client)
    assert body["total_entries"] == 4
    assert body["history"][2]["content"] == "user: late"


async def test_stale_page_tail_is_ignored_and_overwritten(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    await deliver(client, envelope(conversation(turn="t0")))
    page = sidecar.value("session:s1:page:0")
    ghost = {"role": "user", "content": "ghost", "timestamp": "2025-01-01T00:00:00+00:00"}
    sidecar.put(
        "session:s1:page:0", {"entries": [*page["entries"], ghost, ghost], "turn_ids": ["t0", "gx"]}
    )
    assert [e["content"] for e in (await history(client))["history"]] == [
        "user: hi",
        "assistant: hi",
    ]
    await deliver(client, envelope(conversation(turn="t1", text="next")))
    contents = [e["content"] for e in (await history(client))["history"]]
    assert contents == ["user: hi", "assistant: hi", "user: next", "assistant: next"]
    assert sidecar.value("session:s1:page:0")["turn_ids"] == ["t0", "t1"]


async def test_user_registered_is_idempotent_and_keeps_summary(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    registered = {
        "event_type": "UserRegistered",
        "user_id": "zia",
        "name": "Zia",
        "preferred_style": "formal",
    }
    assert await deliver(client, envelope(registered)) == "SUCCESS"
    first = sidecar.etag("user:zia")
    assert first is not None
    assert await deliver(client, envelope(registered)) == "SUCCESS"
    assert sidecar.etag("user:zia") == first  # not written again
    sidecar.put(
        "user:ann", {"name": None, "user_summary": "Ann likes tea.", "summary_turn_count": 3}
    )
    again = registered | {"user_id": "ann", "name": "Ann"}
    assert await deliver(client, envelope(again)) == "SUCCESS"
    stored = sidecar.value("user:ann")
    assert (stored["name"], stored["preferred_style"]) == ("Ann", "formal")
    assert (stored["user_summary"], stored["summary_turn_count"]) == ("Ann likes tea.", 3)
    profile = (await client.get("/memories/zia")).json()
    assert (profile["name"], profile["preferred_style"]) == ("Zia", "formal")
