"""Two memory-service replicas appending to one session through one real sidecar, per engine.

Within one replica the appends of a user take turns (a lock); across replicas only the state
store's ETags keep every turn. On daprd with Redis that guard is weaker than on daca: a
transaction is not atomic, and inside a transaction an upsert without an ETag overwrites an
existing key even when it asks for first-write. The history must still hold every turn once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from daca.dapr.settings import DaprSettings
from daca.memory.app import create_app
from daca.memory.settings import MemorySettings
from daca.runtime.config import SidecarConfig
from tests.engines import Engine
from tests.integration.conftest import copy_components
from tests.memory.helpers import FakeWriter
from tests.runtime.harness import serve

pytestmark = pytest.mark.redis

EVENTS = 60


def delivery(session: str, n: int) -> dict[str, Any]:
    """The CloudEvent a sidecar delivers for turn ``n``."""
    return {
        "id": uuid.uuid4().hex,
        "specversion": "1.0",
        "source": "chat-service",
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/json",
        "topic": "conversations",
        "pubsubname": "pubsub",
        "data": {
            "event_type": "ConversationUpdated",
            "user_id": "alice",
            "session_id": session,
            "turn_id": f"turn-{n:03d}",
            "user_message": f"user {n}",
            "assistant_reply": f"assistant {n}",
            "timestamp": "2026-01-01T00:00:00Z",
        },
    }


async def deliver(replica: httpx.AsyncClient, event: dict[str, Any]) -> str:
    """Deliver as the sidecar does, honouring RETRY as its resiliency policy would."""
    headers = {"content-type": "application/cloudevents+json"}
    for _ in range(200):
        answer = await replica.post("/conversations", json=event, headers=headers)
        assert answer.status_code == 200, answer.text
        status: str = answer.json()["status"]
        if status != "RETRY":
            return status
    return "RETRY"


async def test_two_replicas_keep_every_turn_once(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    resources = copy_components(tmp_path / "components", redis_url)
    config = SidecarConfig(
        app_id="agent-memory-service",
        http_port=0,
        resources_paths=(resources,),
        home=tmp_path / "home",
        bundle_redis=False,
    )
    session = f"busy-{uuid.uuid4().hex[:6]}"
    async with engine.sidecar(config) as sidecar:
        settings = MemorySettings(
            dapr=DaprSettings(DAPR_HTTP_PORT=sidecar.http_port), MEMORY_PAGE_SIZE=4
        )
        async with (
            serve(create_app(settings, summary_writer=FakeWriter())) as first,
            serve(create_app(settings, summary_writer=FakeWriter())) as second,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{first}", timeout=60) as one,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{second}", timeout=60) as two,
        ):
            replicas = (one, two)
            events = [delivery(session, n) for n in range(EVENTS)]
            # Every event twice, to both replicas at once: a redelivery racing the original.
            statuses = await asyncio.gather(
                *(deliver(replicas[n % 2], event) for n, event in enumerate(events)),
                *(deliver(replicas[(n + 1) % 2], event) for n, event in enumerate(events)),
            )
            body = (await one.get(f"/conversations/{session}")).json()
            counters = [(await r.get("/healthz")).json()["metrics"] for r in replicas]
    assert statuses == ["SUCCESS"] * (2 * EVENTS)
    # Appends of different turns to the one session race across the replicas: some lose the
    # ETag race and are tried again (counted); each event's second copy is a duplicate. (On
    # daprd a retried append can also find its own half-applied first try: one skip more.)
    assert sum(c["append_conflicts"] for c in counters) > 0
    assert sum(c["duplicates_skipped"] for c in counters) >= EVENTS
    contents = [entry["content"] for entry in body["history"]]
    assert body["total_entries"] == 2 * EVENTS, contents
    assert sorted(contents) == sorted(
        f"{role} {n}" for n in range(EVENTS) for role in ("user", "assistant")
    )
    for user, reply in zip(contents[::2], contents[1::2], strict=True):
        assert reply == user.replace("user", "assistant")
