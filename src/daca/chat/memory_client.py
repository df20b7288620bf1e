"""Reads what the memory service knows, by Dapr service invocation.

Memory is a nice-to-have on the chat path: when the memory service is down, slow or answers
badly, the chat carries on with defaults (a new user, no history) and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from daca.contracts.ids import Identifier
from daca.contracts.models import (
    MAX_QUERY_CHARS,
    ConversationEntry,
    ConversationHistory,
    Fact,
    Facts,
    MemoryContext,
    SearchResult,
    SessionInfo,
    Sessions,
    UserMetadata,
)
from daca.dapr.client import DaprClient
from daca.dapr.errors import DaprClientError
from daca.dapr.transport import SidecarResponse

logger = logging.getLogger(__name__)

T = TypeVar("T")


class MemoryReadError(Exception):
    """The memory service answered with a non-2xx status."""


@dataclass(frozen=True)
class MemorySnapshot:
    """The user's metadata, the session's most recent entries and the memories (any session)
    that match the message."""

    metadata: UserMetadata = field(default_factory=UserMetadata)
    recent: list[ConversationEntry] = field(default_factory=list)
    relevant: list[SearchResult] = field(default_factory=list)


def _ok(response: SidecarResponse) -> SidecarResponse:
    """``response`` when it is 2xx, else ``MemoryReadError``."""
    if not response.is_success:
        raise MemoryReadError(f"memory service answered {response.status_code}")
    return response


class _Forgotten(BaseModel):
    """The part of the memory service's ``DELETE /memories/{user_id}`` answer the chat uses."""

    sessions: list[Identifier]


class MemoryClient:
    """Reads user metadata and recent history from the memory service (app ``app_id``)."""

    def __init__(self, dapr: DaprClient, app_id: str, *, timeout: float) -> None:
        self._dapr = dapr
        self._app_id = app_id
        self._timeout = timeout

    async def metadata(self, user_id: str) -> UserMetadata:
        """``GET /memories/{user_id}`` on the memory service."""
        response = _ok(await self._dapr.invoke(self._app_id, f"memories/{user_id}"))
        return UserMetadata.model_validate_json(response.content)

    async def history(self, session_id: str, limit: int) -> ConversationHistory:
        """``GET /conversations/{session_id}?limit=N`` on the memory service."""
        method = f"conversations/{session_id}"
        response = await self._dapr.invoke(self._app_id, method, params={"limit": str(limit)})
        return ConversationHistory.model_validate_json(_ok(response).content)

    async def facts(self, user_id: str) -> list[Fact]:
        """``GET /memories/{user_id}/facts`` on the memory service."""
        response = await self._dapr.invoke(self._app_id, f"memories/{user_id}/facts")
        return Facts.model_validate_json(_ok(response).content).facts

    async def sessions(self, user_id: str) -> list[SessionInfo]:
        """``GET /memories/{user_id}/sessions`` on the memory service."""
        response = await self._dapr.invoke(self._app_id, f"memories/{user_id}/sessions")
        return Sessions.model_validate_json(_ok(response).content).sessions

    async def forget_fact(self, user_id: str, fact_id: str) -> bool:
        """``DELETE /memories/{user_id}/facts/{fact_id}``: ``False`` when there is no such fact."""
        method = f"memories/{user_id}/facts/{fact_id}"
        response = await self._dapr.invoke(self._app_id, method, http_method="DELETE")
        if response.status_code == 404:
            return False
        _ok(response)
        return True

    async def forget(self, user_id: str) -> list[str]:
        """``DELETE /memories/{user_id}`` on the memory service: the user's forgotten sessions."""
        response = await self._dapr.invoke(
            self._app_id, f"memories/{user_id}", http_method="DELETE"
        )
        try:
            return _Forgotten.model_validate_json(_ok(response).content).sessions
        except ValidationError as exc:
            raise MemoryReadError("the memory service's answer to a forget is malformed") from exc

    async def snapshot(
        self, user_id: str, session_id: str, limit: int, *, query: str = "", k: int = 5
    ) -> MemorySnapshot:
        """Metadata, recent entries and the memories matching ``query``, in one invocation
        (``GET /memories/{user_id}/context``); defaults for whatever could not be read."""
        params = {"session_id": session_id, "limit": str(limit), "q": query[:MAX_QUERY_CHARS]}
        params["k"] = str(k if query.strip() else 0)

        async def read() -> MemoryContext:
            method = f"memories/{user_id}/context"
            response = await self._dapr.invoke(self._app_id, method, params=params)
            return MemoryContext.model_validate_json(_ok(response).content)

        found = await self._guarded("context", user_id, read(), MemoryContext())
        if found.unavailable:
            missing = ", ".join(found.unavailable)
            logger.warning("Memory %s for %s unavailable, using defaults", missing, user_id)
        return MemorySnapshot(metadata=found.metadata, recent=found.recent, relevant=found.relevant)

    async def _guarded(self, what: str, key: str, read: Awaitable[T], default: T) -> T:
        """``read`` awaited within the timeout, or ``default`` (with a warning) when it fails."""
        try:
            async with asyncio.timeout(self._timeout):
                return await read
        except (DaprClientError, MemoryReadError, ValidationError, TimeoutError) as exc:
            logger.warning(
                "Memory %s for %s unavailable, using defaults: %s", what, key, _reason(exc)
            )
            return default


def _reason(exc: Exception) -> str:
    """A short, payload-free description of a failed read."""
    if isinstance(exc, DaprClientError | MemoryReadError):
        return str(exc)
    return type(exc).__name__
