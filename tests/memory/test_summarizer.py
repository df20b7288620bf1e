"""The summary coalescer: bursts, earlier summaries, failures and restarts."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from daca.llm.memory_update import MemoryUpdate
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import (
    FakeWriter,
    bulk,
    conversation,
    deliver,
    deliver_bulk,
    envelope,
    memory_settings,
    running_app,
    wait_for,
)


def pending_count(sidecar: FakeSidecar, user: str = "alice") -> int:
    pending = sidecar.value(f"pending:{user}")
    return 0 if pending is None else len(pending["turns"])


def summary_of(sidecar: FakeSidecar, user: str = "alice") -> str | None:
    record = sidecar.value(f"user:{user}")
    return None if record is None else record.get("user_summary")


async def test_burst_is_coalesced_into_few_calls(sidecar: FakeSidecar, writer: FakeWriter) -> None:
    sessions = ("s1", "s2")
    events = [envelope(conversation(session=sessions[n % 2], turn=f"t{n}")) for n in range(40)]
    settings = memory_settings(summary_debounce_seconds=0.3, summary_max_delay_seconds=10.0)
    async with running_app(sidecar, writer, settings) as client:
        statuses = await asyncio.gather(*(deliver(client, event) for event in events))
        assert set(statuses) == {"SUCCESS"}
        await wait_for(lambda: pending_count(sidecar) == 0 and summary_of(sidecar) is not None)
    assert 1 <= len(writer.calls) <= 5
    covered = [(t.session_id, t.turn_id) for _, turns in writer.calls for t in turns]
    assert sorted(covered) == sorted((sessions[n % 2], f"t{n}") for n in range(40))
    record = sidecar.value("user:alice")
    assert record["summary_turn_count"] == 40
    assert (
        record["user_summary"] == f"summary {len(writer.calls)} ({len(writer.calls[-1][1])} turns)"
    )


async def test_next_summary_starts_from_the_previous_one(
    client: httpx.AsyncClient, sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    await deliver(client, envelope(conversation(turn="t1")))
    await wait_for(lambda: summary_of(sidecar) == "summary 1 (1 turns)")
    await deliver(client, envelope(conversation(turn="t2")))
    await wait_for(lambda: summary_of(sidecar) == "summary 2 (1 turns)")
    assert [previous for previous, _ in writer.calls] == [None, "summary 1 (1 turns)"]
    assert [t.turn_id for t in writer.calls[1][1]] == ["t2"]
    assert sidecar.value("user:alice")["summary_last_turn_id"] == "t2"


async def test_writer_failure_keeps_pending_and_a_later_attempt_succeeds(
    sidecar: FakeSidecar,
) -> None:
    writer = FakeWriter(fail_times=2)
    async with running_app(sidecar, writer) as client:
        await deliver(client, envelope(conversation(turn="t1")))
        await wait_for(lambda: len(writer.calls) >= 1)
        assert pending_count(sidecar) == 1
        assert summary_of(sidecar) is None
        await wait_for(lambda: summary_of(sidecar) is not None)
        assert pending_count(sidecar) == 0
        assert len(writer.calls) == 3
        metrics = (await client.get("/healthz")).json()["metrics"]
    assert (metrics["summary_calls"], metrics["summary_failures"]) == (3, 2)
    assert (await_history_len(sidecar)) == 2


def await_history_len(sidecar: FakeSidecar) -> int:
    head = sidecar.value("session:s1")
    return 0 if head is None else int(head["entry_count"])


async def test_slow_writer_times_out_and_is_retried(sidecar: FakeSidecar) -> None:
    class SlowOnce(FakeWriter):
        async def write(self, previous_summary: str | None, *rest: Any) -> MemoryUpdate:
            if not self.calls:
                self.calls.append((previous_summary, []))
                await asyncio.Event().wait()
            return await super().write(previous_summary, *rest)

    writer = SlowOnce()
    settings = memory_settings(summary_timeout_seconds=0.05)
    async with running_app(sidecar, writer, settings) as client:
        await deliver(client, envelope(conversation(turn="t1")))
        await wait_for(lambda: summary_of(sidecar) is not None)
        assert pending_count(sidecar) == 0
        assert (await client.get("/healthz")).json()["metrics"]["summary_failures"] == 1


async def test_get_memories_schedules_pending_turns_after_a_restart(sidecar: FakeSidecar) -> None:
    failing = FakeWriter(fail_times=1000)
    settings = memory_settings(summary_retry_base_seconds=10.0, summary_retry_max_seconds=10.0)
    async with running_app(sidecar, failing, settings) as client:
        await deliver(client, envelope(conversation(turn="t1")))
        await wait_for(lambda: len(failing.calls) == 1)
    assert pending_count(sidecar) == 1
    writer = FakeWriter()
    async with running_app(sidecar, writer) as client:
        assert (await client.get("/healthz")).json()["metrics"]["pending_users"] == 0
        await client.get("/memories/alice")
        await wait_for(lambda: summary_of(sidecar) is not None)
        assert [t.turn_id for t in writer.calls[0][1]] == ["t1"]
        await wait_for(lambda: pending_count(sidecar) == 0)


async def test_summary_calls_are_bounded_by_the_batch_size(sidecar: FakeSidecar) -> None:
    writer = FakeWriter()
    async with running_app(sidecar, writer, memory_settings(summary_max_batch=3)) as client:
        for number in range(7):
            await deliver(client, envelope(conversation(turn=f"t{number}")))
        await wait_for(lambda: pending_count(sidecar) == 0 and len(writer.calls) >= 3)
    assert all(len(turns) <= 3 for _, turns in writer.calls)
    assert sum(len(turns) for _, turns in writer.calls) == 7


async def test_summaries_never_overlap_per_user(sidecar: FakeSidecar) -> None:
    in_flight = 0
    most = 0

    class Tracking(FakeWriter):
        async def write(self, previous_summary: str | None, *rest: Any) -> MemoryUpdate:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            return await super().write(previous_summary, *rest)

    settings = memory_settings(summary_debounce_seconds=0.0, summary_max_delay_seconds=0.0)
    async with running_app(sidecar, Tracking(), settings) as client:
        for number in range(10):
            await deliver(client, envelope(conversation(turn=f"t{number}")))
        await wait_for(lambda: pending_count(sidecar) == 0)
    assert most == 1
    assert sidecar.value("user:alice")["summary_turn_count"] == 10


class Timed(FakeWriter):
    """Records when (loop time) each call began."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.started: list[float] = []

    async def write(self, previous_summary: str | None, *rest: Any) -> MemoryUpdate:
        self.started.append(asyncio.get_running_loop().time())
        return await super().write(previous_summary, *rest)


async def test_a_user_who_keeps_talking_is_summarised_once_an_interval(
    sidecar: FakeSidecar,
) -> None:
    """Every turn is a pause here (no debounce), yet the calls are an interval apart and
    together cover every turn."""
    writer = Timed()
    settings = memory_settings(
        summary_debounce_seconds=0.0,
        summary_max_delay_seconds=0.0,
        summary_min_interval_seconds=0.3,
        summary_max_pending_turns=1000,
    )
    async with running_app(sidecar, writer, settings) as client:
        for number in range(12):
            await deliver(client, envelope(conversation(turn=f"t{number}")))
            await asyncio.sleep(0.05)  # the pace of the talk, not a wait for the app
        await wait_for(lambda: pending_count(sidecar) == 0)
    assert 2 <= len(writer.calls) <= 4, [len(turns) for _, turns in writer.calls]
    # Rounds begin an interval apart; each call begins after its round has read the batch,
    # which takes a little longer or shorter each time (without the interval: ~0.05 s).
    gaps = [later - earlier for earlier, later in itertools.pairwise(writer.started)]
    assert all(gap > 0.25 for gap in gaps), gaps
    covered = [t.turn_id for _, turns in writer.calls for t in turns]
    assert covered == [f"t{number}" for number in range(12)]


async def test_enough_pending_turns_go_without_waiting_for_the_interval(
    sidecar: FakeSidecar,
) -> None:
    writer = FakeWriter()
    settings = memory_settings(
        summary_debounce_seconds=0.0,
        summary_min_interval_seconds=60.0,
        summary_max_pending_turns=3,
    )
    async with running_app(sidecar, writer, settings) as client:
        await deliver(client, envelope(conversation(turn="t0")))  # the first is not held back
        await wait_for(lambda: len(writer.calls) == 1 and pending_count(sidecar) == 0)
        for number in (1, 2, 3):
            await deliver(client, envelope(conversation(turn=f"t{number}")))
        await wait_for(lambda: len(writer.calls) == 2 and pending_count(sidecar) == 0)
    assert [t.turn_id for t in writer.calls[1][1]] == ["t1", "t2", "t3"]


async def test_a_user_who_never_pauses_is_summarised_every_few_turns(
    sidecar: FakeSidecar,
) -> None:
    """No pause, the max delay and the interval all far off: the turns of one bulk delivery
    count each, and enough of them make the summary due at once."""
    writer = FakeWriter()
    settings = memory_settings(
        summary_debounce_seconds=60.0,
        summary_max_delay_seconds=60.0,
        summary_min_interval_seconds=60.0,
        summary_max_pending_turns=3,
    )
    async with running_app(sidecar, writer, settings) as client:
        first = [envelope(conversation(turn=f"t{number}")) for number in range(2)]
        assert await deliver_bulk(client, bulk(*first)) == ["SUCCESS"] * 2
        await wait_for(lambda: pending_count(sidecar) == 2)
        assert writer.calls == []  # two turns: not yet due
        more = [envelope(conversation(turn=f"t{number}")) for number in range(2, 5)]
        assert await deliver_bulk(client, bulk(*more)) == ["SUCCESS"] * 3
        await wait_for(lambda: len(writer.calls) == 1 and pending_count(sidecar) == 0)
    assert [t.turn_id for t in writer.calls[0][1]] == [f"t{number}" for number in range(5)]


async def test_retries_and_a_backlog_do_not_wait_for_the_interval(sidecar: FakeSidecar) -> None:
    """A failed call is retried after its backoff, and turns beyond one batch follow at once:
    the interval spaces out a talking user's calls, not recovery."""
    failing = FakeWriter(fail_times=1000)
    settings = memory_settings(summary_retry_base_seconds=10.0, summary_retry_max_seconds=10.0)
    async with running_app(sidecar, failing, settings) as client:
        for number in range(7):
            await deliver(client, envelope(conversation(turn=f"t{number}")))
        await wait_for(lambda: len(failing.calls) == 1)
    writer = FakeWriter(fail_times=1)
    settings = memory_settings(summary_min_interval_seconds=60.0, summary_max_batch=3)
    async with running_app(sidecar, writer, settings) as client:
        await client.get("/memories/alice")  # schedules the pending turns
        await wait_for(lambda: pending_count(sidecar) == 0)
    assert [len(turns) for _, turns in writer.calls] == [3, 3, 3, 1]  # the first one failed
