"""``/memories/{user_id}`` on the chat service: what the agent knows about a user, forgetting.

These are the routes a client (the terminal chat, a web page) uses; the chat service reads and
forgets through the memory service, and in production mode only for the token's own user.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from daca.chat.deps import Caller, Chat
from daca.chat.models import Forgotten, UserMemory
from daca.chat.openapi import FACT_RESPONSES, FORGET_RESPONSES, SESSION_RESPONSES
from daca.contracts.ids import Identifier
from daca.contracts.models import ConversationHistory, Sessions

router = APIRouter(tags=["memories"])

UserId = Annotated[Identifier, Path()]


@router.get("/memories/{user_id}", response_model=UserMemory, responses=FORGET_RESPONSES)
async def user_memory(user_id: UserId, service: Chat, caller: Caller) -> UserMemory:
    """The user's summary and current facts, each fact with the turns it came from."""
    return await service.user_memory(user_id, caller=caller)


@router.get("/memories/{user_id}/sessions", response_model=Sessions, responses=FORGET_RESPONSES)
async def sessions(user_id: UserId, service: Chat, caller: Caller) -> Sessions:
    """The user's sessions, the most recently active first, each titled by its first message."""
    return await service.sessions(user_id, caller=caller)


@router.get(
    "/memories/{user_id}/sessions/{session_id}",
    response_model=ConversationHistory,
    responses=SESSION_RESPONSES,
)
async def session_history(
    user_id: UserId, session_id: Annotated[Identifier, Path()], service: Chat, caller: Caller
) -> ConversationHistory:
    """The newest entries (at most 200) of one of the user's sessions, oldest first."""
    return await service.session_history(user_id, session_id, caller=caller)


@router.delete("/memories/{user_id}/facts/{fact_id}", status_code=204, responses=FACT_RESPONSES)
async def forget_fact(
    user_id: UserId, fact_id: Annotated[Identifier, Path()], service: Chat, caller: Caller
) -> Response:
    """Forget one fact of the user."""
    await service.forget_fact(user_id, fact_id, caller=caller)
    return Response(status_code=204)


@router.delete("/memories/{user_id}", response_model=Forgotten, responses=FORGET_RESPONSES)
async def forget(user_id: UserId, service: Chat, caller: Caller) -> Forgotten:
    """Forget the user: the memory service deletes their metadata, summary, facts, sessions and
    turn log, and this service its records of their sessions."""
    return await service.forget(user_id, caller=caller)
