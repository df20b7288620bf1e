"""``DELETE /memories/{user_id}``: forget everything stored about a user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from daca.chat.deps import Caller, Chat
from daca.chat.models import Forgotten
from daca.chat.openapi import FORGET_RESPONSES
from daca.contracts.ids import Identifier

router = APIRouter(tags=["memories"])


@router.delete("/memories/{user_id}", response_model=Forgotten, responses=FORGET_RESPONSES)
async def forget(
    user_id: Annotated[Identifier, Path()], service: Chat, caller: Caller
) -> Forgotten:
    """Forget the user: the memory service deletes their metadata, summary, facts, sessions and
    turn log, and this service its records of their sessions. In production mode only for the
    token's own user."""
    return await service.forget(user_id, caller=caller)
