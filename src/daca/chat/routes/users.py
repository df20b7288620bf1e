"""``POST /users``: register a user's name and preferred style."""

from __future__ import annotations

from fastapi import APIRouter, status

from daca.chat.deps import Caller, Chat
from daca.chat.models import UserRegistration
from daca.chat.openapi import USERS_RESPONSES
from daca.contracts.events import UserRegistered

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    response_model=UserRegistered,
    status_code=status.HTTP_202_ACCEPTED,
    responses=USERS_RESPONSES,
)
async def register_user(
    registration: UserRegistration, service: Chat, caller: Caller
) -> UserRegistered:
    """Record the registration and publish ``UserRegistered``; the memory service stores it
    asynchronously (202). In production mode only for the token's own user."""
    return await service.register(registration, caller=caller)
