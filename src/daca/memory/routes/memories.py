"""``/memories/{user_id}``: what the service knows about a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from daca.contracts.ids import Identifier
from daca.contracts.models import UserMetadata, UserProfile
from daca.memory.deps import AppToken, Services
from daca.memory.models import Initialized
from daca.memory.openapi import BY_ID_RESPONSES, BY_ID_WITH_BODY_RESPONSES

router = APIRouter(prefix="/memories", tags=["memories"], dependencies=[AppToken])

UserId = Annotated[Identifier, Path()]


@router.get("/{user_id}", response_model=UserMetadata, responses=BY_ID_RESPONSES)
async def get_memories(user_id: UserId, services: Services) -> UserMetadata:
    """The user's metadata; an unknown user gets defaults. Pending turns get summarised."""
    metadata, has_pending = await services.users.get(user_id)
    if has_pending:
        services.summarizer.ensure_scheduled(user_id)
    return metadata


@router.post(
    "/{user_id}/initialize", response_model=Initialized, responses=BY_ID_WITH_BODY_RESPONSES
)
async def initialize_memories(
    user_id: UserId, profile: UserProfile, services: Services
) -> Initialized:
    """Set the user's profile fields (summary bookkeeping is kept)."""
    stored = await services.users.initialize(user_id, profile)
    return Initialized(status="success", user_id=user_id, metadata=stored)
