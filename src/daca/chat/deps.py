"""Dependency aliases of the chat routes (the service objects live on ``app.state``)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from daca.chat.service import ChatService


def get_chat_service(request: Request) -> ChatService:
    """The chat service built by the app's lifespan."""
    return cast(ChatService, request.app.state.chat_service)


Chat = Annotated[ChatService, Depends(get_chat_service)]
