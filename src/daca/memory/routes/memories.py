"""``/memories/{user_id}``: what the service knows about a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from daca.contracts.ids import Identifier
from daca.contracts.models import (
    MAX_QUERY_CHARS,
    Facts,
    MemoryContext,
    SearchResults,
    Sessions,
    UserMetadata,
    UserProfile,
)
from daca.memory import keys
from daca.memory.context import read_context
from daca.memory.deps import AppToken, Services
from daca.memory.forget import delete_fact, forget_user
from daca.memory.models import FactDeleted, Forgotten, Initialized
from daca.memory.openapi import BY_ID_RESPONSES, BY_ID_WITH_BODY_RESPONSES, FACT_RESPONSES
from daca.memory.recall import search_memories
from daca.memory.records import FactBook
from daca.memory.sessions import user_sessions
from daca.memory.statekit import parse

router = APIRouter(prefix="/memories", tags=["memories"], dependencies=[AppToken])

UserId = Annotated[Identifier, Path()]
FactId = Annotated[Identifier, Path()]


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
    exclude_session: Annotated[
        Identifier | None, Query(description="leave out this session's turns and facts")
    ] = None,
) -> SearchResults:
    """The user's current facts and past turns (any session) that best match ``q``, best
    first: BM25 over the facts, the newest 1000 logged turns and the pending ones, tolerant of
    typos; no two results point to the same turns."""
    return await search_memories(
        services.client, services.settings.state_store, user_id, q, k,
        exclude_session=exclude_session, embedder=services.embedder,
    )  # fmt: skip


@router.get("/{user_id}/context", response_model=MemoryContext, responses=BY_ID_RESPONSES)
async def context(
    user_id: UserId,
    services: Services,
    session_id: Annotated[Identifier, Query(description="the session being answered")],
    limit: Annotated[
        int, Query(ge=0, le=1000, description="how many of the session's latest entries")
    ] = 20,
    q: Annotated[
        str, Query(max_length=MAX_QUERY_CHARS, description="the message: memories that match it")
    ] = "",
    k: Annotated[int, Query(ge=0, le=50, description="how many memories at most")] = 5,
) -> MemoryContext:
    """What the chat reads for one reply, in one call: the user's metadata, the session's
    most recent ``limit`` entries, and the ``k`` memories of the user's other sessions that
    best match ``q`` (as ``/search`` finds them). A part that could not be read is left at its
    default and named in ``unavailable``."""
    return await read_context(services, user_id, session_id, limit, q, k)


@router.get("/{user_id}/sessions", response_model=Sessions, responses=BY_ID_RESPONSES)
async def list_sessions(user_id: UserId, services: Services) -> Sessions:
    """The user's sessions, the most recently active first, each with its first message as a
    title: the sessions of the newest 1000 logged turns and of the pending ones."""
    found = await user_sessions(services.client, services.settings.state_store, user_id)
    return Sessions(user_id=user_id, sessions=found)


@router.get("/{user_id}/facts", response_model=Facts, responses=BY_ID_RESPONSES)
async def list_facts(
    user_id: UserId,
    services: Services,
    history: Annotated[
        bool, Query(description="also the facts a newer one superseded (`superseded_by` set)")
    ] = False,
) -> Facts:
    """The facts extracted from the user's turns, oldest first, each with the turns, session
    and time it came from."""
    store = services.settings.state_store
    book = parse(FactBook, await services.client.get_state(store, keys.facts_key(user_id)))
    book = book or FactBook()
    return Facts(user_id=user_id, facts=book.facts if history else book.current)


@router.delete("/{user_id}/facts/{fact_id}", response_model=FactDeleted, responses=FACT_RESPONSES)
async def forget_fact(user_id: UserId, fact_id: FactId, services: Services) -> FactDeleted:
    """Remove one fact (a fact it had superseded becomes current again)."""
    settings = services.settings
    found = await delete_fact(
        services.client, settings.state_store, user_id, fact_id,
        attempts=settings.append_max_attempts,
    )  # fmt: skip
    if not found:
        raise HTTPException(404, f"user {user_id!r} has no fact {fact_id!r}")
    return FactDeleted(status="deleted", user_id=user_id, fact_id=fact_id)


@router.delete("/{user_id}", response_model=Forgotten, responses=BY_ID_RESPONSES)
async def forget(user_id: UserId, services: Services) -> Forgotten:
    """Remove everything stored for the user: metadata, summary, facts, the turn log, pending
    turns, and every session of theirs with its idempotency markers."""
    sessions, deleted = await forget_user(services.client, services.settings.state_store, user_id)
    return Forgotten(
        status="forgotten", user_id=user_id, sessions=sessions, records_deleted=deleted
    )
