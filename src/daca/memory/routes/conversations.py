"""``/conversations``: session histories and the ``conversations`` topic subscriber, one event
per delivery (``POST /conversations``) or in bulk (``POST /bulk/conversations``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from daca.contracts.ids import Identifier
from daca.contracts.models import ConversationHistory
from daca.memory.deps import AppToken, Envelope, Limit, Services
from daca.memory.events import BulkEnvelope, BulkTopicResponse, EntryStatus, TopicResponse
from daca.memory.openapi import (
    BULK_SUBSCRIBER_RESPONSES,
    BY_ID_RESPONSES,
    CLOUD_EVENT_BODY,
    SUBSCRIBER_RESPONSES,
)

router = APIRouter(tags=["conversations"], dependencies=[AppToken])

SessionId = Annotated[Identifier, Path()]


@router.get(
    "/conversations/{session_id}", response_model=ConversationHistory, responses=BY_ID_RESPONSES
)
async def get_conversation(
    session_id: SessionId, services: Services, limit: Limit
) -> ConversationHistory:
    """The session's history, or its most recent ``limit`` entries."""
    return await services.history.read(session_id, limit)


@router.post(
    "/conversations",
    response_model=TopicResponse,
    responses=SUBSCRIBER_RESPONSES,
    openapi_extra=CLOUD_EVENT_BODY,
)
async def handle_conversation_event(envelope: Envelope, services: Services) -> TopicResponse:
    """Dapr delivers ``conversations`` events here; always HTTP 200 with a Dapr status."""
    return TopicResponse(status=await services.events.handle(envelope))


@router.post(
    "/bulk/conversations", response_model=BulkTopicResponse, responses=BULK_SUBSCRIBER_RESPONSES
)
async def handle_conversation_events(
    envelope: BulkEnvelope, services: Services
) -> BulkTopicResponse:
    """Dapr delivers ``conversations`` events here in bulk (a subscription with
    ``bulkSubscribe`` enabled): their turns are stored together, and each entry gets its
    status (an entry whose ``event`` is not a valid CloudEvent is ``DROP``)."""
    statuses = await services.events.handle_many(envelope.events())
    return BulkTopicResponse(
        statuses=[
            EntryStatus(entry_id=entry.entry_id, status=status)
            for entry, status in zip(envelope.entries, statuses, strict=True)
        ]
    )
