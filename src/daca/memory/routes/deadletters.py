"""``/deadletters``: the subscriber for ``conversations-deadletter`` and its listing."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from daca.dapr.errors import DaprClientError
from daca.memory.deps import AppToken, RawEvent, Services
from daca.memory.errors import MemoryServiceError
from daca.memory.events import TopicResponse
from daca.memory.replay import replay

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/deadletters", tags=["deadletters"], dependencies=[AppToken])


@router.post("", response_model=TopicResponse)
async def store_dead_letter(event: RawEvent, services: Services) -> TopicResponse:
    """Keep the dead-lettered CloudEvent as it arrived; RETRY only on transient failures."""
    try:
        await services.dead_letters.add(event)
    except (DaprClientError, MemoryServiceError) as exc:
        logger.warning("dead letter not stored (%s), RETRY", type(exc).__name__)
        return TopicResponse(status="RETRY")
    services.counters.dead_letters_stored += 1
    return TopicResponse(status="SUCCESS")


@router.post("/replay")
async def replay_dead_letters(services: Services) -> dict[str, int]:
    """Republish the kept dead letters that are valid events again (same CloudEvent ids, so
    nothing is stored twice), and forget them; the others stay kept."""
    result = await replay(services.client, services.dead_letters, services.settings.pubsub_name)
    return {"replayed": result.replayed, "skipped": result.skipped}


@router.get("")
async def list_dead_letters(services: Services) -> dict[str, Any]:
    """The kept dead letters, oldest first."""
    events = await services.dead_letters.list()
    return {"count": len(events), "events": events}
