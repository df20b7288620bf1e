"""``/memories/{user_id}``: what the service knows about a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from daca.contracts.ids import Identifier
from daca.contracts.models import (
    MAX_QUERY_CHARS,
    SearchResults,
    UserMetadata,
    UserProfile,
)
from daca.memory.deps import AppToken, Services
from daca.memory.models import Initialized
from daca.memory.openapi import BY_ID_RESPONSES, BY_ID_WITH_BODY_RESPONSES
from daca.memory.recall import search_memories

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


@router.get("/{user_id}/search", response_model=SearchResults, responses=BY_ID_RESPONSES)
async def search(
    user_id: UserId,
    services: Services,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="text")],
    k: Annotated[int, Query(ge=1, le=50, description="how many results at most")] = 5,
) -> SearchResults:
    """The user's past turns (any session) that best match ``q``, best first: BM25 over the
    newest 1000 logged turns and the pending ones, tolerant of typos."""
    return await search_memories(services.client, services.settings.state_store, user_id, q, k)
