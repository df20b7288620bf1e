"""``POST /bulk/conversations``: a bulk delivery's turns are stored together, each entry answered.

The entries are daprd's ``BulkSubscribeMessageItem`` (``entryId``, ``event``, ``metadata``,
``contentType``); the answer is ``{"statuses": [{"entryId", "status"}]}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from daca.contracts.models import MAX_MESSAGE_CHARS
from daca.memory.history import MAX_TRANSACTION_BYTES, ROUND_CHARS
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import (
    NO_SUMMARIES,
    FakeWriter,
    bulk,
    conversation,
    deliver_bulk,
    envelope,
    memory_settings,
    running_app,
)


async def contents(client: httpx.AsyncClient, session: str) -> list[str]:
    response = await client.get(f"/conversations/{session}")
    assert response.status_code == 200
    return [entry["content"] for entry in response.json()["history"]]


def turns(session: str, numbers: range, *, user: str = "alice") -> list[dict[str, Any]]:
    return [
        envelope(conversation(user=user, session=session, turn=f"{session}-{n}", text=str(n)))
        for n in numbers
    ]


def said(numbers: range) -> list[str]:
    return [f"{role}: {n}" for n in numbers for role in ("user", "assistant")]


async def test_a_batch_of_sessions_under_way_costs_four_calls(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    """30 turns of three sessions of two users, crossing page boundaries (pages of 4 entries):
    the first batch creates the records; the next one, with its pages created, costs four."""
    first = [*turns("a", range(5)), *turns("b", range(5)), *turns("c", range(5), user="bob")]
    assert await deliver_bulk(client, bulk(*first)) == ["SUCCESS"] * 15
    # Each session ends mid-page: one more turn each stays on that page, which exists.
    again = [
        *turns("a", range(5, 6)),
        *turns("b", range(5, 6)),
        *turns("c", range(5, 6), user="bob"),
    ]
    requests = sidecar.requests
    assert await deliver_bulk(client, bulk(*again)) == ["SUCCESS"] * 3
    assert sidecar.requests - requests == 4  # create the markers, two reads, one transaction
    for session in "abc":
        assert await contents(client, session) == said(range(6))
    assert sidecar.value("session:a")["entry_count"] == 12
    assert len(sidecar.value("session:a:page:2")["entries"]) == 4
    assert sidecar.value("turn:a:a-5") == {"user_id": "alice", "index": 10}
    pending = sidecar.value("pending:alice")["turns"]
    assert [t["turn_id"] for t in pending] == [
        *(f"a-{n}" for n in range(5)), *(f"b-{n}" for n in range(5)), "a-5", "b-5",
    ]  # fmt: skip
    assert len(sidecar.value("pending:bob")["turns"]) == 6


async def test_a_redelivered_batch_and_repeats_within_it_store_nothing_twice(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    events = turns("s1", range(3))
    assert await deliver_bulk(client, bulk(*events)) == ["SUCCESS"] * 3
    repeated = [events[0], *turns("s1", range(3, 5)), events[0], events[2]]
    assert await deliver_bulk(client, bulk(*repeated)) == ["SUCCESS"] * 5
    assert await contents(client, "s1") == said(range(5))
    metrics = (await client.get("/healthz")).json()["metrics"]
    assert (metrics["events_handled"], metrics["duplicates_skipped"]) == (8, 3)


async def test_only_the_entries_at_fault_are_dropped(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    """An entry that is no CloudEvent, and one reusing a stored turn id with other content, are
    DROP; the others of the batch are stored."""
    await deliver_bulk(client, bulk(*turns("s1", range(1))))
    clash = envelope(conversation(session="s1", turn="s1-0", text="something else"))
    body = bulk(turns("s1", range(1, 2))[0], {"not": "a cloudevent"}, clash,
                *turns("s1", range(2, 3)))  # fmt: skip
    assert await deliver_bulk(client, body) == ["SUCCESS", "DROP", "DROP", "SUCCESS"]
    assert await contents(client, "s1") == said(range(3))
    assert (await client.get("/healthz")).json()["metrics"]["events_dropped"] == 2


async def test_sidecar_down_is_retry_for_every_entry(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    events = [*turns("s1", range(2)), *turns("s2", range(2), user="bob")]
    sidecar.down = True
    assert await deliver_bulk(client, bulk(*events)) == ["RETRY"] * 4
    sidecar.down = False
    assert await deliver_bulk(client, bulk(*events)) == ["SUCCESS"] * 4
    assert await contents(client, "s2") == said(range(2))


async def test_user_registered_in_a_batch(client: httpx.AsyncClient) -> None:
    registered = envelope({"event_type": "UserRegistered", "user_id": "alice", "name": "Alice"})
    body = bulk(registered, *turns("s1", range(2)))
    assert await deliver_bulk(client, body) == ["SUCCESS"] * 3
    user = (await client.get("/memories/alice")).json()
    assert user["name"] == "Alice"


async def test_long_turns_are_appended_in_rounds_and_large_writes_in_several_transactions(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    """Forty users' turns of near the largest size: more text than one round holds. Then one
    short turn each: one round, but every tail page it rewrites holds a long turn, more than
    one transaction's worth (the sidecar refuses a body over 4 MiB)."""
    long = "x" * (MAX_MESSAGE_CHARS - 10)
    events = [
        envelope(conversation(user=f"u{n}", session=f"s{n}", turn="t0", text=f"{n} {long}"))
        for n in range(40)
    ]
    assert 40 * 2 * len(long) > ROUND_CHARS
    assert await deliver_bulk(client, bulk(*events)) == ["SUCCESS"] * 40
    short = [
        envelope(conversation(user=f"u{n}", session=f"s{n}", turn="t1", text="short"))
        for n in range(40)
    ]
    assert 40 * 2 * len(long) > MAX_TRANSACTION_BYTES
    transactions = sidecar.transactions
    assert await deliver_bulk(client, bulk(*short)) == ["SUCCESS"] * 40
    assert sidecar.transactions - transactions >= 2
    for n in range(40):
        assert await contents(client, f"s{n}") == [
            f"user: {n} {long}", f"assistant: {n} {long}", "user: short", "assistant: short",
        ]  # fmt: skip


async def test_a_body_that_is_no_bulk_delivery_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/bulk/conversations", json=envelope(conversation()))
    assert response.status_code == 422
    assert "entries" in response.text


async def test_two_replicas_appending_batches_of_the_same_sessions_keep_every_turn_once(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """Batches of the same sessions on two replicas at once: only the ETags keep every turn,
    so conflicts must happen, and every retry must still store each turn once."""
    events = [*turns("s1", range(40)), *turns("s2", range(40), user="bob")]
    batches = [bulk(*events[n : n + 8]) for n in range(0, 80, 8)]
    async with (
        running_app(sidecar, writer, memory_settings()) as first,
        running_app(sidecar, writer, memory_settings()) as second,
    ):
        replicas = (first, second)
        answers = await asyncio.gather(
            *(deliver_bulk(replicas[n % 2], body) for n, body in enumerate(batches))
        )
        assert answers == [["SUCCESS"] * 8] * 10
        assert sorted(await contents(first, "s1")) == sorted(said(range(40)))
        assert sorted(await contents(first, "s2")) == sorted(said(range(40)))
    assert sidecar.transaction_conflicts > 0


async def test_an_unreadable_pending_record_drops_its_users_turns_and_is_left_alone(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    """The turns already pending are copied unvalidated, but the record's shape is checked."""
    sidecar.put("pending:alice", {"turns": "not a list"})
    body = bulk(*turns("s1", range(2)), *turns("s2", range(1), user="bob"))
    assert await deliver_bulk(client, body) == ["DROP", "DROP", "SUCCESS"]
    assert sidecar.value("pending:alice") == {"turns": "not a list"}
    assert await contents(client, "s2") == said(range(1))


async def test_replicas_appending_sessions_of_one_user_without_rollback_keep_every_turn_pending(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """Two replicas append different sessions of one user at once, on a store whose
    transactions do not roll back (daprd on Redis): a transaction whose pending-record guard
    fails still commits its head. Every stored turn must still reach the pending record, once,
    or the summary and search would never see it."""
    sidecar.partial_transactions = True
    sessions = [f"s{n}" for n in range(4)]
    events = {sid: turns(sid, range(12)) for sid in sessions}
    batches = [bulk(*events[sid][n : n + 2]) for n in range(0, 12, 2) for sid in sessions]
    waiting = memory_settings(**NO_SUMMARIES)
    async with (
        running_app(sidecar, writer, waiting) as first,
        running_app(sidecar, writer, waiting) as second,
    ):
        replicas = (first, second)
        answers = await asyncio.gather(
            *(deliver_bulk(replicas[n % 2], body) for n, body in enumerate(batches))
        )
        assert answers == [["SUCCESS"] * 2] * len(batches)
        for sid in sessions:
            assert await contents(first, sid) == said(range(12))
    assert sidecar.transaction_conflicts > 0
    pending = [(t["session_id"], t["turn_id"]) for t in sidecar.value("pending:alice")["turns"]]
    assert sorted(pending) == sorted((sid, f"{sid}-{n}") for sid in sessions for n in range(12))
