"""``/deadletters``: the subscriber for ``conversations-deadletter`` and its listing."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from daca.dapr.errors import DaprClientError
from daca.memory.deps import AppToken, RawEvent, Services
from daca.memory.errors import MemoryServiceError
from daca.memory.events import TopicResponse
from daca.memory.models import DeadLetterList, Replayed
from daca.memory.openapi import DEAD_LETTER_BODY, STORE_RESPONSES, SUBSCRIBER_RESPONSES
from daca.memory.replay import replay

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/deadletters", tags=["deadletters"], dependencies=[AppToken])


@router.post(
    "",
    response_model=TopicResponse,
    responses=SUBSCRIBER_RESPONSES,
    openapi_extra=DEAD_LETTER_BODY,
)
async def store_dead_letter(event: RawEvent, services: Services) -> TopicResponse:
    """Keep the dead-lettered CloudEvent as it arrived; RETRY only on transient failures."""
    try:
        await services.dead_letters.add(event)
    except (DaprClientError, MemoryServiceError) as exc:
        logger.warning("dead letter not stored (%s), RETRY", type(exc).__name__)
        return TopicResponse(status="RETRY")
    services.counters.dead_letters_stored += 1
    return TopicResponse(status="SUCCESS")


@router.post("/replay", response_model=Replayed, responses=STORE_RESPONSES)
async def replay_dead_letters(services: Services) -> Replayed:
    """Republish the kept dead letters that are valid events again (same CloudEvent ids, so
    nothing is stored twice), and forget them; the others stay kept."""
    result = await replay(services.client, services.dead_letters, services.settings.pubsub_name)
    return Replayed(replayed=result.replayed, skipped=result.skipped)


@router.get("", response_model=DeadLetterList, responses=STORE_RESPONSES)
async def list_dead_letters(services: Services) -> DeadLetterList:
    """The kept dead letters, oldest first."""
    events = await services.dead_letters.list()
    return DeadLetterList(count=len(events), events=events)
