"""Dependency aliases of the chat routes (the service objects live on ``app.state``)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from daca.access.tokens import InvalidTokenError, TokenVerifier
from daca.chat.errors import UnauthenticatedError
from daca.chat.service import ChatService

_bearer = HTTPBearer(auto_error=False, description="Production mode: a JWT or an API key")


async def get_chat_service(request: Request) -> ChatService:
    """The chat service built by the app's lifespan (a coroutine: FastAPI would run a plain
    function in a worker thread)."""
    return cast(ChatService, request.app.state.chat_service)


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The authenticated user in production mode; ``None`` in local mode (no identity)."""
    verifier: TokenVerifier | None = request.app.state.token_verifier
    if verifier is None:
        return None
    if credentials is None:
        raise UnauthenticatedError("A bearer token is required (Authorization: Bearer ...).")
    try:
        return await verifier.user_of(credentials.credentials)
    except InvalidTokenError as exc:
        raise UnauthenticatedError(str(exc)) from exc


Chat = Annotated[ChatService, Depends(get_chat_service)]
Caller = Annotated[str | None, Depends(get_caller)]
