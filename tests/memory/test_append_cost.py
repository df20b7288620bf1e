"""Appending a turn costs the same at 10 and at 10,000 turns: no history rewrite per event, and
four sidecar calls for a turn of a session under way."""

from __future__ import annotations

from daca.contracts.models import ConversationTurn
from daca.dapr.client import DaprClient
from daca.memory import keys
from daca.memory.history import HistoryStore
from daca.memory.records import PendingTurns, SessionHead
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import memory_settings

PAGE = 50
LONG_TURNS = 10_010  # 20,020 entries: the tail page holds 20 entries, as the short session's


def turn(session: str, n: int) -> ConversationTurn:
    return ConversationTurn(
        session_id=session,
        turn_id=f"t{n}",
        user_message=f"question {n}",
        assistant_reply=f"answer {n}",
        timestamp="2026-01-01T00:00:00+00:00",
    )


async def measure(
    store: HistoryStore, sidecar: FakeSidecar, session: str, n: int
) -> tuple[int, int]:
    """Requests and bytes sent to the sidecar for one append (pending turns already summarised)."""
    sidecar.put(keys.pending_key("u"), PendingTurns().model_dump(mode="json"))
    requests, sent = sidecar.requests, sidecar.bytes_sent
    assert await store.append("u", turn(session, n))
    return sidecar.requests - requests, sidecar.bytes_sent - sent


def seed_long_session(sidecar: FakeSidecar, tail_page: object) -> None:
    """A 10,010-turn session: its head and its tail page (earlier pages are never read)."""
    head = SessionHead(session_id="long", entry_count=2 * LONG_TURNS, page_size=PAGE)
    sidecar.put(keys.head_key("long"), head.model_dump(mode="json"))
    sidecar.put(keys.page_key("long", head.entry_count // PAGE), tail_page)


async def test_append_cost_does_not_grow_with_the_history() -> None:
    sidecar = FakeSidecar()
    async with DaprClient("http://sidecar", transport=sidecar.transport) as client:
        store = HistoryStore(client, memory_settings(page_size=PAGE))
        for n in range(10):
            await store.append("u", turn("short", n))
        seed_long_session(sidecar, sidecar.value(keys.page_key("short", 0)))
        for session in ("short", "long"):  # the tail pages alike, and known to this process
            await measure(store, sidecar, session, 10)
        short = await measure(store, sidecar, "short", 11)
        long = await measure(store, sidecar, "long", 11)
        history = await store.read("long", limit=4)
    assert history.total_entries == 2 * LONG_TURNS + 4
    contents = [entry.content for entry in history.history]
    assert contents == ["question 10", "answer 10", "question 11", "answer 11"]
    assert short[0] == 4  # create the marker, read the head, then the rest, one transaction
    assert long[0] == short[0]  # the same requests
    assert abs(long[1] - short[1]) <= 64  # the same bytes, but for longer counters and ids
