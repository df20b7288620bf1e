"""``POST /chat/``: one turn of conversation."""

from __future__ import annotations

from fastapi import APIRouter

from daca.chat.deps import Caller, Chat
from daca.chat.models import Message, Response
from daca.chat.openapi import CHAT_RESPONSES

router = APIRouter(tags=["chat"])


@router.post("/chat/", response_model=Response, responses=CHAT_RESPONSES)
async def chat(message: Message, service: Chat, caller: Caller) -> Response:
    """Answer ``message`` with what the memory service knows about the user (in production
    mode the token's user, who must be the body's ``user_id``)."""
    return await service.answer(message, caller=caller)
