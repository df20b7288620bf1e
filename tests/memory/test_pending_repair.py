"""A stored turn that never reached its user's pending record is put there by whoever appends it
next, and a turn a summary already took is not: the turn log tells the two apart."""

from __future__ import annotations

from daca.contracts.models import ConversationTurn
from daca.memory.records import LoggedTurn
from daca.memory.userlog import LogTail
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import (
    NO_SUMMARIES,
    FakeWriter,
    conversation,
    deliver,
    envelope,
    memory_settings,
    running_app,
    wait_for,
)


def pending_turns(sidecar: FakeSidecar, user: str = "alice") -> list[str]:
    return [
        turn["turn_id"] for turn in (sidecar.value(f"pending:{user}") or {"turns": []})["turns"]
    ]


async def test_a_redelivery_after_a_failed_append_puts_the_stored_turn_in_pending(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """On a store without rollback, another writer of the user's pending record makes the
    append's transaction fail on that record after writing the session head; the append then
    gives up (one attempt: as if the replica crashed before retrying). The turn is in history
    but not pending, so no summary or search would ever see it, until its redelivery, handled
    by a fresh replica that knows nothing of the failure, puts it there."""
    settings = memory_settings(append_max_attempts=1, **NO_SUMMARIES)
    async with running_app(sidecar, writer, settings) as client:
        assert await deliver(client, envelope(conversation(turn="t1", text="one"))) == "SUCCESS"
        sidecar.partial_transactions = True

        def another_writer(_keys: list[str]) -> None:  # rewrites the record: its ETag changes
            sidecar.put("pending:alice", sidecar.value("pending:alice"))
            sidecar.before_transaction = None

        sidecar.before_transaction = another_writer
        event = envelope(conversation(turn="t2", text="two"))
        assert await deliver(client, event) == "RETRY"
        assert sidecar.transaction_conflicts == 1
        assert sidecar.value("session:s1")["entry_count"] == 4  # the head was written
        assert pending_turns(sidecar) == ["t1"]
    async with running_app(sidecar, writer, settings) as restarted:
        assert await deliver(restarted, event) == "SUCCESS"
        assert pending_turns(sidecar) == ["t1", "t2"]
        assert await deliver(restarted, event) == "SUCCESS"
        assert pending_turns(sidecar) == ["t1", "t2"]
        assert sidecar.value("session:s1")["entry_count"] == 4


async def test_a_redelivery_of_a_summarised_turn_leaves_it_summarised(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """A turn a summary took is in the user's log, not pending: its redelivery adds it to
    neither history nor the pending record, and no second summary covers it."""
    async with running_app(sidecar, writer) as client:
        event = envelope(conversation(turn="t1"))
        assert await deliver(client, event) == "SUCCESS"
        await wait_for(lambda: (sidecar.value("log:alice") or {}).get("count") == 1)
        assert pending_turns(sidecar) == []
        assert await deliver(client, event) == "SUCCESS"
        assert pending_turns(sidecar) == []
        assert sidecar.value("session:s1")["entry_count"] == 2
    assert len(writer.calls) == 1


async def test_a_redelivery_leaves_an_unreadable_pending_record_alone(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """A record that cannot be read cannot tell whether it holds the turn: the redelivery of a
    stored turn is still acknowledged, and the record is not rewritten."""
    async with running_app(sidecar, writer, memory_settings(**NO_SUMMARIES)) as client:
        event = envelope(conversation(turn="t1"))
        assert await deliver(client, event) == "SUCCESS"
        sidecar.put("pending:alice", {"turns": "not a list"})
        assert await deliver(client, event) == "SUCCESS"
        assert sidecar.value("pending:alice") == {"turns": "not a list"}


def turn(turn_id: str, timestamp: str) -> ConversationTurn:
    return ConversationTurn(
        session_id="s1", turn_id=turn_id, user_message="u", assistant_reply="a",
        timestamp=timestamp,
    )  # fmt: skip


def logged(turn_id: str, timestamp: str) -> LoggedTurn:
    return LoggedTurn(**turn(turn_id, timestamp).model_dump())


def test_a_complete_log_holds_exactly_its_turns() -> None:
    tail = LogTail([logged("a", "2025-04-07T15:00:00Z")], complete=True)
    assert tail.may_hold(turn("a", "2025-04-07T15:00:00Z"))
    assert not tail.may_hold(turn("b", "2024-01-01T00:00:00Z"))
    assert not LogTail([], complete=True).may_hold(turn("a", "2025-04-07T15:00:00Z"))


def test_a_turn_older_than_a_partial_tail_is_taken_as_logged_before_it() -> None:
    """Only a search's tail of a long log is read: a turn it lacks is taken as logged before
    it when it is no newer than the tail's oldest turn (an offset-less time counts as UTC)."""
    tail = LogTail(
        [logged("x", "2025-04-07T15:00:00+02:00"), logged("y", "2025-04-08T00:00:00Z")],
        complete=False,
    )
    assert tail.may_hold(turn("y", "2025-04-08T00:00:00Z"))
    assert tail.may_hold(turn("old", "2025-04-07T13:00:00"))
    assert not tail.may_hold(turn("new", "2025-04-07T13:00:01"))
    assert not tail.may_hold(turn("newest", "2025-04-09T00:00:00Z"))
    assert LogTail([], complete=False).may_hold(turn("any", "2025-04-09T00:00:00Z"))
