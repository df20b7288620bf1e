"""A summary's write-back on a store whose transactions do not roll back (daprd on Redis): a
commit that failed half-way is completed by its retry, each covered turn logged and counted
once, and a user forgotten meanwhile stays forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import FakeWriter, running_app, wait_for

#: The turns the seeded log holds: two short of its first page (100 turns), so the summary of
#: the three pending turns writes two pages.
LOGGED = 98


def stored_turn(session: str, turn: str) -> dict[str, Any]:
    return {
        "session_id": session,
        "turn_id": turn,
        "user_message": f"user: {turn}",
        "assistant_reply": f"assistant: {turn}",
        "timestamp": "2025-04-07T15:00:00+00:00",
    }


def seed(sidecar: FakeSidecar) -> None:
    """A log of ``LOGGED`` turns of session s0, and three turns of s1 pending."""
    sidecar.put("log:alice", {"count": LOGGED, "page_size": 100})
    old = [stored_turn("s0", f"old{n}") for n in range(LOGGED)]
    sidecar.put("log:alice:page:0", {"turns": old})
    sidecar.put("pending:alice", {"turns": [stored_turn("s1", f"t{n}") for n in (1, 2, 3)]})


def logged_ids(sidecar: FakeSidecar) -> list[str]:
    """The turn ids the log counts, oldest first."""
    head = sidecar.value("log:alice")
    ids = []
    for number in range((head["count"] - 1) // head["page_size"] + 1):
        ids += [turn["turn_id"] for turn in sidecar.value(f"log:alice:page:{number}")["turns"]]
    return ids[: head["count"]]


def on_summary_commit(sidecar: FakeSidecar, act: Callable[[], None]) -> None:
    """Run ``act`` once, before the first transaction that writes the user's log."""

    def hook(keys: list[str]) -> None:
        if "log:alice" in keys:
            sidecar.before_transaction = None
            act()

    sidecar.before_transaction = hook


async def summarised(client: httpx.AsyncClient, writer: FakeWriter) -> None:
    """Have the pending turns summarised (a read schedules them) and wait for the summarizer
    to be done with the user."""
    await client.get("/memories/alice")
    await wait_for(lambda: len(writer.calls) == 1)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while (await client.get("/healthz")).json()["metrics"]["pending_users"]:
        assert loop.time() < deadline, "the summarizer is still busy with the user"
        await asyncio.sleep(0.01)


async def test_a_retry_after_the_pending_record_changed_logs_and_counts_each_turn_once(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """An append rewrites the pending record between the commit's read and its transaction:
    the summary, the log pages and the log head are written, the pending record is not. The
    retry finds the turns still pending; it removes them, without logging them again (they
    went to two pages) or counting them twice in the summary's bookkeeping."""
    seed(sidecar)
    sidecar.partial_transactions = True
    on_summary_commit(sidecar, lambda: sidecar.put("pending:alice", sidecar.value("pending:alice")))
    async with running_app(sidecar, writer) as client:
        await summarised(client, writer)
    assert sidecar.transaction_conflicts == 1
    assert sidecar.value("pending:alice") == {"turns": []}
    assert logged_ids(sidecar) == [f"old{n}" for n in range(LOGGED)] + ["t1", "t2", "t3"]
    user = sidecar.value("user:alice")
    assert user["user_summary"] == "summary 1 (3 turns)"
    assert (user["summary_turn_count"], user["summary_last_turn_id"]) == (3, "t3")


async def test_a_retry_after_the_user_record_changed_stores_the_summary(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """A metadata update rewrites the user record between the commit's read and its
    transaction: the turns leave the pending record for the log, the summary is not written.
    The retry finds the turns no longer pending, but its own attempt took them: it stores the
    summary beside the update instead of discarding it."""
    seed(sidecar)
    sidecar.put("user:alice", {"name": None})
    sidecar.partial_transactions = True
    on_summary_commit(sidecar, lambda: sidecar.put("user:alice", {"name": "Alice"}))
    async with running_app(sidecar, writer) as client:
        await summarised(client, writer)
    assert sidecar.transaction_conflicts == 1
    user = sidecar.value("user:alice")
    assert (user["name"], user["user_summary"]) == ("Alice", "summary 1 (3 turns)")
    assert (user["summary_turn_count"], user["summary_last_turn_id"]) == (3, "t3")
    assert sidecar.value("pending:alice") == {"turns": []}
    assert logged_ids(sidecar)[LOGGED:] == ["t1", "t2", "t3"]


async def test_a_user_forgotten_during_the_commit_stays_forgotten(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """The user's records are deleted between the commit's read and its transaction, which
    then fails: its retry finds the turns gone and no user, and writes nothing back."""
    seed(sidecar)
    sidecar.put("user:alice", {"name": "Alice"})
    sidecar.partial_transactions = True

    def forget() -> None:
        doomed = sidecar.keys()
        for key in doomed:
            sidecar.delete(key)

    on_summary_commit(sidecar, forget)
    async with running_app(sidecar, writer) as client:
        await summarised(client, writer)
    assert sidecar.transaction_conflicts == 1
    assert sidecar.keys() == set()


async def test_a_retry_leaves_the_summary_another_replica_stored_of_the_same_turns(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """Another replica's summary of the same turns commits between this commit's read and its
    transaction, which then fails on every guard: its retry finds the turns gone and the user
    record summarised up to the same turn by another summary, and leaves it."""
    seed(sidecar)
    theirs = {
        "user_summary": "their summary",
        "summary_turn_count": 3,
        "summary_last_turn_id": "t3",
    }

    def another_replica_commits() -> None:
        turns = sidecar.value("pending:alice")["turns"]
        old = sidecar.value("log:alice:page:0")["turns"]
        sidecar.put("user:alice", sidecar.value("user:alice") | theirs)
        sidecar.put("log:alice:page:0", {"turns": old + turns[:2]})
        sidecar.put("log:alice:page:1", {"turns": turns[2:]})
        sidecar.put("log:alice", {"count": LOGGED + 3, "page_size": 100})
        sidecar.put("pending:alice", {"turns": []})

    on_summary_commit(sidecar, another_replica_commits)
    async with running_app(sidecar, writer) as client:
        await summarised(client, writer)
    assert sidecar.transaction_conflicts == 1
    assert sidecar.value("user:alice") | theirs == sidecar.value("user:alice")
    assert logged_ids(sidecar)[LOGGED:] == ["t1", "t2", "t3"]
