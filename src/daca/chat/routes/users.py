"""``POST /users``: register a user's name and preferred style."""

from __future__ import annotations

from fastapi import APIRouter, status

from daca.chat.deps import Chat
from daca.chat.models import UserRegistration
from daca.contracts.events import UserRegistered

router = APIRouter(tags=["users"])


@router.post("/users", response_model=UserRegistered, status_code=status.HTTP_202_ACCEPTED)
async def register_user(registration: UserRegistration, service: Chat) -> UserRegistered:
    """Publish ``UserRegistered``; the memory service stores it asynchronously (202)."""
    return await service.register(registration)
