"""Helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.conftest import System


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll the async ``check`` until it returns something truthy (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def history(system: System, session: str) -> list[dict[str, Any]]:
    answer = await system.memory.get(f"/conversations/{session}")
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["history"]
    return entries


def turn_event(session: str, n: int, turn_id: str | None = None) -> dict[str, Any]:
    return {
        "event_type": "ConversationUpdated",
        "user_id": "u1",
        "session_id": session,
        "turn_id": turn_id or uuid.uuid4().hex,
        "user_message": f"question {n}",
        "assistant_reply": f"answer {n}",
        "timestamp": "2026-01-01T00:00:00Z",
    }


async def publish(system: System, event: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{system.chat_sidecar.http_port}/v1.0/publish/pubsub/conversations"
    async with httpx.AsyncClient(headers=system.sidecar_headers) as client:
        answer = await client.post(url, json=event)
    assert answer.status_code == 204, answer.text
