"""Shared helpers of the memory service tests: a fake summary writer, events, polling."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from daca.contracts.models import ConversationTurn
from daca.llm.memory_update import MemoryUpdate, NewFact
from daca.memory.app import create_app
from daca.memory.settings import MemorySettings
from tests.memory.fake_sidecar import FakeSidecar


class FakeWriter:
    """A ``SummaryWriter`` that records its calls, fails the first ``fail_times``, and extracts
    the facts ``facts`` lists for a message."""

    def __init__(self, *, fail_times: int = 0) -> None:
        self.calls: list[tuple[str | None, list[ConversationTurn]]] = []
        self.known_facts: list[list[tuple[str, str]]] = []
        self.fail_times = fail_times
        #: The facts to extract from a user message, by message text.
        self.facts: dict[str, list[str]] = {}

    async def write(
        self,
        previous_summary: str | None,
        turns: Sequence[ConversationTurn],
        known_facts: Sequence[tuple[str, str]] = (),
    ) -> MemoryUpdate:
        self.calls.append((previous_summary, list(turns)))
        self.known_facts.append(list(known_facts))
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("the LLM is down")
        summary = f"summary {len(self.calls)} ({len(turns)} turns)"
        facts = [
            NewFact(text, [turn])
            for turn in turns
            for text in self.facts.get(turn.user_message, [])
        ]
        return MemoryUpdate(summary=summary, facts=facts)


#: Settings under which no summary runs during a test, so the pending record can be looked at.
NO_SUMMARIES: dict[str, Any] = {
    "summary_debounce_seconds": 3600,
    "summary_max_delay_seconds": 3600,
    "summary_max_pending_turns": 1000,
}


def memory_settings(**overrides: Any) -> MemorySettings:
    """Small pages and a tiny debounce, so tests cross page boundaries and run fast."""
    values: dict[str, Any] = {
        "page_size": 4,
        "append_max_attempts": 1000,
        "summary_debounce_seconds": 0.05,
        "summary_max_delay_seconds": 0.5,
        "summary_min_interval_seconds": 0.0,
        "summary_retry_base_seconds": 0.02,
        "summary_retry_max_seconds": 0.1,
    }
    return MemorySettings(**(values | overrides))


@asynccontextmanager
async def running_app(
    sidecar: FakeSidecar, writer: FakeWriter, settings: MemorySettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The memory app with its lifespan running, reached over ``httpx.ASGITransport``."""
    app = create_app(
        settings or memory_settings(), summary_writer=writer, dapr_transport=sidecar.transport
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


def conversation(
    *, user: str = "alice", session: str = "s1", turn: str | None = "t1", text: str = "hi"
) -> dict[str, Any]:
    """A ``ConversationUpdated`` payload."""
    data: dict[str, Any] = {
        "event_type": "ConversationUpdated",
        "user_id": user,
        "session_id": session,
        "user_message": f"user: {text}",
        "assistant_reply": f"assistant: {text}",
        "timestamp": "2025-04-07T15:00:00+00:00",
    }
    if turn is not None:
        data["turn_id"] = turn
    return data


def envelope(data: Any, *, event_id: str | None = None) -> dict[str, Any]:
    """The CloudEvent the sidecar would deliver around ``data``."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "chat-service",
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/json",
        "topic": "conversations",
        "pubsubname": "pubsub",
        "data": data,
    }


async def deliver(client: httpx.AsyncClient, body: Any, *, path: str = "/conversations") -> str:
    """POST a delivery as the sidecar does; the answer must be HTTP 200 with a status."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/cloudevents+json"}
    response = await client.post(path, content=content, headers=headers)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def bulk(*events: Any) -> dict[str, Any]:
    """A bulk delivery of ``events`` as daprd POSTs it."""
    return {
        "id": str(uuid.uuid4()),
        "type": "com.dapr.event.sent.bulk",
        "topic": "conversations",
        "pubsubname": "pubsub",
        "metadata": {"pubsubName": "pubsub"},
        "entries": [
            {
                "entryId": f"e{n}",
                "event": event,
                "metadata": {},
                "contentType": "application/cloudevents+json",
            }
            for n, event in enumerate(events)
        ],
    }


async def deliver_bulk(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    """POST a bulk delivery; the answer must be 200 with one status per entry, in order."""
    response = await client.post("/bulk/conversations", json=body)
    assert response.status_code == 200, response.text
    statuses = response.json()["statuses"]
    assert [s["entryId"] for s in statuses] == [e["entryId"] for e in body["entries"]]
    return [s["status"] for s in statuses]


async def wait_for(condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds or ``timeout`` passes (then fail)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
