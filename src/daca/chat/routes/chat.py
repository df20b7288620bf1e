"""``POST /chat/``: one turn of conversation; ``POST /chat/stream``: the same, streamed."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from daca.chat.deps import Caller, Chat
from daca.chat.errors import ChatError
from daca.chat.models import Message, Response
from daca.chat.openapi import CHAT_RESPONSES, STREAM_RESPONSES
from daca.chat.service import StreamEvent

logger = logging.getLogger(__name__)

router = APIRouter(tags=["chat"])


@router.post("/chat/", response_model=Response, responses=CHAT_RESPONSES)
async def chat(message: Message, service: Chat, caller: Caller) -> Response:
    """Answer ``message`` with what the memory service knows about the user (in production
    mode the token's user, who must be the body's ``user_id``)."""
    return await service.answer(message, caller=caller)


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _encoded(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    """The events as SSE; a failure after the stream started is an ``error`` event."""
    try:
        async for name, data in events:
            yield sse(name, data)
    except ChatError as exc:
        yield sse("error", {"status": exc.status_code, "detail": str(exc)})


@router.post("/chat/stream", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def chat_stream(message: Message, service: Chat, caller: Caller) -> StreamingResponse:
    """The same turn as ``POST /chat/``, as Server-Sent Events: ``memories`` (what was
    retrieved for it), ``delta`` (``{"text"}``, the reply as it is generated), ``tool_call`` and
    ``tool_output`` as they happen, then ``done`` (the ``Response``, once the turn is recorded)
    or ``error`` (``{"status", "detail"}``; nothing is recorded). A refused request gets its
    status before any event; a client that leaves early leaves no turn."""
    turn = await service.prepare(message, caller=caller)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _encoded(service.stream(turn)), media_type="text/event-stream", headers=headers
    )
