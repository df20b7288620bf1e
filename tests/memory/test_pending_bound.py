"""A user's pending record stays bounded while the summary model is down: appends keep
succeeding, the turns the next summary covers are kept, and the ones after them give way."""

from __future__ import annotations

import pytest

from daca.contracts.models import ConversationTurn
from daca.dapr.client import DaprClient
from daca.llm.memory_update import MemoryUpdate
from daca.memory import keys
from daca.memory.history import HistoryStore
from daca.memory.records import MAX_PENDING_CHARS, MAX_PENDING_TURNS
from daca.memory.summaries import SummaryStore
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import memory_settings

BATCH = 100  # the summary's most turns (summary_max_batch)


def pending_turn(n: int, chars: int = 10) -> dict[str, object]:
    """A stored pending turn of an earlier session, ``chars`` characters of text in all."""
    return earlier_turn(n, chars).model_dump(mode="json")


def earlier_turn(n: int, chars: int = 10) -> ConversationTurn:
    text = "x" * (chars // 2)
    return ConversationTurn(
        session_id="earlier", turn_id=f"p{n}", user_message=text,
        assistant_reply="y" * (chars - len(text)), timestamp="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


def new_turn(message: str = "question") -> ConversationTurn:
    return ConversationTurn(
        session_id="s", turn_id="t1", user_message=message, assistant_reply="answer",
        timestamp="2026-01-02T00:00:00+00:00",
    )  # fmt: skip


def pending_ids(sidecar: FakeSidecar) -> list[tuple[str, str]]:
    stored = sidecar.value(keys.pending_key("u"))
    assert isinstance(stored, dict)
    return [(t["session_id"], t["turn_id"]) for t in stored["turns"]]


async def append(sidecar: FakeSidecar, client: DaprClient, turn: ConversationTurn) -> None:
    """Append ``turn`` for user ``u``; its session's history must hold it."""
    store = HistoryStore(client, memory_settings(summary_max_batch=BATCH))
    assert await store.append("u", turn)
    history = await store.read(turn.session_id)
    assert [e.content for e in history.history] == [turn.user_message, turn.assistant_reply]


async def pending_after_append(
    seeded: list[dict[str, object]], turn: ConversationTurn
) -> list[tuple[str, str]]:
    sidecar = FakeSidecar()
    sidecar.put(keys.pending_key("u"), {"turns": seeded})
    async with DaprClient("http://sidecar", transport=sidecar.transport) as client:
        await append(sidecar, client, turn)
    return pending_ids(sidecar)


async def test_a_full_record_keeps_the_next_summary_batch_and_the_new_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seeded = [pending_turn(n) for n in range(MAX_PENDING_TURNS)]
    kept = await pending_after_append(seeded, new_turn())
    assert len(kept) == MAX_PENDING_TURNS
    assert kept[:BATCH] == [("earlier", f"p{n}") for n in range(BATCH)]
    assert kept[BATCH] == ("earlier", f"p{BATCH + 1}")  # the one after the batch is out
    assert kept[-1] == ("s", "t1")
    assert "1 turns after those the next summary covers are dropped" in caplog.text


async def test_the_record_keeps_at_most_its_text_bound() -> None:
    third = MAX_PENDING_CHARS // 3
    seeded = [pending_turn(n, third) for n in range(3)]  # just under the bound
    kept = await pending_after_append(seeded, new_turn("z" * 100))
    # the next summary covers p0 alone (p1 would take it past half the bound)
    assert kept == [("earlier", "p0"), ("earlier", "p2"), ("s", "t1")]


async def test_a_record_under_its_bounds_keeps_every_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seeded = [pending_turn(n) for n in range(3)]
    kept = await pending_after_append(seeded, new_turn())
    assert kept == [("earlier", "p0"), ("earlier", "p1"), ("earlier", "p2"), ("s", "t1")]
    assert "dropped" not in caplog.text


async def test_a_summary_covers_at_most_half_the_text_bound() -> None:
    third = MAX_PENDING_CHARS // 3
    sidecar = FakeSidecar()
    sidecar.put(keys.pending_key("u"), {"turns": [pending_turn(n, third) for n in range(2)]})
    async with DaprClient("http://sidecar", transport=sidecar.transport) as client:
        loaded = await SummaryStore(client, memory_settings()).load("u")
    assert [t.turn_id for t in loaded.turns] == ["p0"]


async def test_a_summary_under_way_survives_appends_to_a_full_record() -> None:
    """Turns dropped while a summary is written are never those it covers, so it commits
    (dropping the oldest instead would discard it, and every next one, while the user talks)."""
    sidecar = FakeSidecar()
    sidecar.put(
        keys.pending_key("u"), {"turns": [pending_turn(n) for n in range(MAX_PENDING_TURNS)]}
    )
    async with DaprClient("http://sidecar", transport=sidecar.transport) as client:
        summaries = SummaryStore(client, memory_settings(summary_max_batch=BATCH))
        loaded = await summaries.load("u")
        assert len(loaded.turns) == BATCH
        await append(sidecar, client, new_turn())
        assert await summaries.commit("u", MemoryUpdate(summary="Likes x."), loaded.turns)
    user = sidecar.value(keys.user_key("u"))
    assert isinstance(user, dict) and user["user_summary"] == "Likes x."
    kept = pending_ids(sidecar)
    assert len(kept) == MAX_PENDING_TURNS - BATCH
    assert kept[0] == ("earlier", f"p{BATCH + 1}") and kept[-1] == ("s", "t1")
