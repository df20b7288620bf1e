"""Both services' ``GET /metrics`` scraped after the tutorial's walkthrough, on both engines."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.helpers import eventually
from tests.prometheus import Samples, samples, value

pytestmark = pytest.mark.redis


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return samples(answer.text)


async def say(system: System, text: str, session: str) -> None:
    body = {"user_id": "junaid", "text": text, "metadata": {"session_id": session}}
    answer = await system.chat.post("/chat/", json=body)
    assert answer.status_code == 200, answer.text


async def test_the_walkthrough_shows_in_both_services_metrics(system: System) -> None:
    await say(system, "I am planning to go to SF tomorrow.", "s1")
    await say(system, "What time is it?", "s1")  # the offline model calls its time tool

    async def summarised() -> Samples | None:
        memory = await scrape(system.memory)
        done = value(memory, "daca_memory_summary_lag_seconds_count") >= 1
        idle = value(memory, "daca_memory_pending_users") == 0
        handled = value(memory, "daca_memory_events_total", outcome="handled") == 2
        return memory if done and idle and handled else None

    memory = await eventually(summarised)
    await say(system, "Where was I planning to go tomorrow?", "s2")
    chat = await scrape(system.chat)

    assert value(chat, "daca_chat_turns_total", outcome="answered") == 3
    for phase in ("memory_read", "agent", "publish", "total"):
        assert value(chat, "daca_chat_turn_duration_seconds_count", phase=phase) == 3, phase
    # The time question is two model calls (the tool call, then the answer).
    assert value(chat, "daca_llm_calls_total", purpose="chat", outcome="ok") == 4
    assert value(chat, "daca_llm_tokens_total", purpose="chat", kind="input") > 0
    assert value(chat, "daca_chat_recorder_turns_total", outcome="recorded") == 3

    attempts = value(memory, "daca_memory_summary_attempts_total")
    assert attempts >= 1
    assert value(memory, "daca_memory_summary_failures_total") == 0
    assert value(memory, "daca_llm_calls_total", purpose="summary", outcome="ok") == attempts
    assert value(memory, "daca_memory_events_total", outcome="duplicate") == 0
    assert value(memory, "daca_memory_events_total", outcome="dropped") == 0
    lag = value(memory, "daca_memory_summary_lag_seconds_sum")
    assert 0 < lag < 60
