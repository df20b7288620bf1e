"""One chat turn and one registration, without HTTP: the logic the routes call.

A turn: read what the memory service knows (by invocation) and this service's own record of
the session (its state store) at once; answer with the agent; record the turn with its event in
one outbox transaction (``turnlog``); reply. The session's recent turns come from both sources,
so a message sent right after the previous reply sees that reply even before pub/sub has
delivered it to the memory service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from pydantic import ValidationError

from daca.chat.agent import ChatAgent, Delta, ToolCall, ToolOutput
from daca.chat.errors import (
    BacklogFullError,
    FactNotFoundError,
    InvalidMessageError,
    MemoryUnavailableError,
    MessageTooLongError,
    ModelFailedError,
    ModelTimeoutError,
    SessionNotFoundError,
    WrongUserError,
)
from daca.chat.memory_client import MemoryClient, MemoryReadError, MemorySnapshot
from daca.chat.metrics import ChatMetrics
from daca.chat.models import (
    Forgotten,
    Identity,
    Message,
    Response,
    ResponseMetadata,
    UserMemory,
    UserRegistration,
)
from daca.chat.recorder import TurnRecorder
from daca.chat.settings import ChatSettings
from daca.chat.turnlog import SessionOwnershipError, SessionRead, SessionRecord, TurnLog
from daca.contracts.events import ConversationUpdated, UserRegistered
from daca.contracts.models import (
    MAX_REPLY_CHARS,
    ConversationEntry,
    ConversationHistory,
    SearchResult,
    Sessions,
)
from daca.dapr.errors import DaprClientError
from daca.llm.prompts import build_chat_instructions
from daca.telemetry import tracing

logger = logging.getLogger(__name__)

#: How many entries of an earlier session ``session_history`` returns at most (its newest).
HISTORY_VIEW_ENTRIES = 200


def check_text(text: str, limit: int) -> str:
    """``text`` if it is non-blank and within ``limit`` characters, else a ``ChatError``."""
    if not text.strip():
        raise InvalidMessageError("Message text cannot be empty or only whitespace.")
    if len(text) > limit:
        raise MessageTooLongError(
            f"Message text is {len(text)} characters long; the limit is {limit} "
            "(MAX_MESSAGE_CHARS)."
        )
    return text


def check_caller(caller: str | None, user_id: str) -> None:
    """In production mode (a ``caller``), a request speaks only for its token's user."""
    if caller is not None and caller != user_id:
        raise WrongUserError(f"The token is for user {caller!r}, not {user_id!r}.")


def new_id() -> str:
    """A fresh session or turn id (uuid4 hex)."""
    return uuid4().hex


StreamEvent = tuple[str, dict[str, Any]]
"""One event of a streamed turn: its name and its JSON data."""


@dataclass(frozen=True)
class PreparedTurn:
    """A turn ready for the agent: who, where, its ids, text, instructions and memories, and the
    session record as read (``None`` when it could not be read)."""

    user_id: str
    session_id: str
    turn_id: str
    text: str
    instructions: str
    memories: list[SearchResult]
    session: SessionRead | None = None
    started: float = field(default_factory=time.perf_counter)

    def response(self, reply: str) -> Response:
        """The answer to the client."""
        return Response(
            user_id=self.user_id, reply=reply, metadata=ResponseMetadata(session_id=self.session_id)
        )


@dataclass(frozen=True)
class ChatService:
    """Answers messages and registers users; stores nothing itself."""

    settings: ChatSettings
    memory: MemoryClient
    agent: ChatAgent
    turns: TurnLog
    recorder: TurnRecorder
    metrics: ChatMetrics = field(default_factory=ChatMetrics)

    async def answer(self, message: Message, *, caller: str | None = None) -> Response:
        """Read memory and the session, run the agent, record the turn, return the reply.

        ``caller`` is the authenticated user (production mode), who must be the message's.
        """
        turn = await self.prepare(message, caller=caller)
        agent_started = time.perf_counter()
        try:
            with tracing.tracer(__name__).start_as_current_span("agent run"):
                reply = await self.agent.reply(turn.instructions, turn.text, turn_id=turn.turn_id)
        except (ModelFailedError, ModelTimeoutError):
            self.metrics.turns.labels("failed").inc()
            raise
        self.metrics.phase("agent", time.perf_counter() - agent_started)
        await self._record_turn(turn, reply)
        return turn.response(reply)

    async def prepare(self, message: Message, *, caller: str | None = None) -> PreparedTurn:
        """Everything a turn needs before the agent runs (every refusal is raised here, so a
        stream starts only for a turn that will run)."""
        started = time.perf_counter()
        check_caller(caller, message.user_id)
        text = check_text(message.text, self.settings.max_message_chars)
        if not self.recorder.accepting:
            raise BacklogFullError("Too many turns wait to be recorded; try again shortly.")
        session_id = (message.metadata and message.metadata.session_id) or new_id()
        reading = time.perf_counter()
        with tracing.tracer(__name__).start_as_current_span("memory read"):
            instructions, memories, own = await self._instructions(
                message.user_id, session_id, text
            )
        self.metrics.phase("memory_read", time.perf_counter() - reading)
        return PreparedTurn(
            message.user_id, session_id, new_id(), text, instructions, memories, own, started
        )

    async def stream(self, turn: PreparedTurn) -> AsyncIterator[StreamEvent]:
        """The turn as events: the memories used, the reply's text as it is generated, tool
        calls and outputs, then ``done`` (the ``Response``) once the turn is recorded. A stream
        that fails or is abandoned before the reply is complete records nothing."""
        yield "memories", {"memories": [m.model_dump(mode="json") for m in turn.memories]}
        agent_started = time.perf_counter()
        try:
            items = self.agent.stream(turn.instructions, turn.text, turn_id=turn.turn_id)
            async for item in items:
                if isinstance(item, Delta):
                    yield "delta", {"text": item.text}
                elif isinstance(item, ToolCall):
                    yield "tool_call", {"name": item.name, "arguments": item.arguments}
                elif isinstance(item, ToolOutput):
                    yield "tool_output", {"output": item.output}
                else:
                    self.metrics.phase("agent", time.perf_counter() - agent_started)
                    await self._record_turn(turn, item.text)
                    yield "done", turn.response(item.text).model_dump(mode="json")
        except (ModelFailedError, ModelTimeoutError):
            self.metrics.turns.labels("failed").inc()
            raise

    async def _instructions(
        self, user_id: str, session_id: str, text: str
    ) -> tuple[str, list[SearchResult], SessionRead | None]:
        """The agent's instructions, with what the memory service knows, the memories
        retrieved for ``text``, and this service's record of the session as read."""
        limit = self.settings.history_limit
        snapshot = self.memory.snapshot(
            user_id, session_id, limit, query=text, k=self.settings.memories_per_message
        )
        memory, read = await asyncio.gather(snapshot, self._own_session(session_id))
        own = read.record if read is not None else None
        if own is not None and own.user_id != user_id:
            raise SessionNotFoundError(f"No session {session_id!r} for user {user_id!r}.")
        recent = merge_recent(memory.recent, own, limit)
        budget = self.settings.history_token_budget
        memories = _elsewhere(memory, session_id)
        instructions = build_chat_instructions(
            memory.metadata, recent, token_budget=budget, memories=memories
        )
        return instructions, memories, read

    async def _own_session(self, session_id: str) -> SessionRead | None:
        """This service's record of the session as read; ``None`` when unreadable now."""
        try:
            return await self.turns.read_session(session_id)
        except DaprClientError as exc:
            logger.warning("Session record of %s unavailable: %s", session_id, exc)
            return None

    async def _record_turn(self, turn: PreparedTurn, reply: str) -> None:
        """Record the turn with its event (queued for retry if the sidecar refuses)."""
        user_id, session_id, turn_id, text = turn.user_id, turn.session_id, turn.turn_id, turn.text
        if len(reply) > MAX_REPLY_CHARS:
            logger.warning("turn %s: reply of %d characters stored truncated", turn_id, len(reply))
        event = ConversationUpdated(
            user_id=user_id, session_id=session_id, turn_id=turn_id,
            user_message=text, assistant_reply=reply[:MAX_REPLY_CHARS],
        )  # fmt: skip
        publishing = time.perf_counter()
        try:
            await self.recorder.record(
                f"turn {turn_id}", lambda: self.turns.record_turn(event, turn.session)
            )
        except SessionOwnershipError as exc:  # another user created the session meanwhile
            raise SessionNotFoundError(f"No session {session_id!r} for user {user_id!r}.") from exc
        finished = time.perf_counter()
        self.metrics.phase("publish", finished - publishing)
        self.metrics.phase("total", finished - turn.started)
        self.metrics.turns.labels("answered").inc()
        logger.info("Turn %s of session %s answered for user %s", turn_id, session_id, user_id)

    async def register(
        self, registration: UserRegistration, *, caller: str | None = None
    ) -> UserRegistered:
        """Record the registration with ``UserRegistered`` (queued for retry if refused)."""
        check_caller(caller, registration.user_id)
        event = UserRegistered(**registration.model_dump())
        item = f"registration of {registration.user_id}"
        await self.recorder.record(item, lambda: self.turns.record_registration(event))
        return event

    async def user_memory(self, user_id: str, *, caller: str | None = None) -> UserMemory:
        """The user's summary and current facts, from the memory service."""
        check_caller(caller, user_id)
        try:
            metadata, facts = await asyncio.gather(
                self.memory.metadata(user_id), self.memory.facts(user_id)
            )
        except (DaprClientError, MemoryReadError) as exc:
            raise MemoryUnavailableError(
                f"The memory service could not be read ({type(exc).__name__}); try again."
            ) from exc
        return UserMemory(
            user_id=user_id, name=metadata.name, user_summary=metadata.user_summary, facts=facts
        )

    def identity(self, caller: str | None) -> Identity:
        """The access mode and the caller it proved (production mode)."""
        if self.settings.access.production:
            return Identity(mode="production", user_id=caller)
        return Identity(mode="local")

    async def sessions(self, user_id: str, *, caller: str | None = None) -> Sessions:
        """The user's sessions, the most recently active first, from the memory service."""
        check_caller(caller, user_id)
        try:
            found = await self.memory.sessions(user_id)
        except (DaprClientError, MemoryReadError, ValidationError) as exc:
            raise MemoryUnavailableError(
                f"The memory service could not list the sessions ({type(exc).__name__}); try again."
            ) from exc
        return Sessions(user_id=user_id, sessions=found)

    async def session_history(
        self, user_id: str, session_id: str, *, caller: str | None = None
    ) -> ConversationHistory:
        """The newest ``HISTORY_VIEW_ENTRIES`` entries of one of the user's sessions: the
        memory service's history merged with this service's record (which has the latest turns
        before pub/sub delivers them, and the recent ones when the memory service is down)."""
        check_caller(caller, user_id)
        try:
            own = await self.turns.session(session_id)
        except DaprClientError as exc:
            raise MemoryUnavailableError(
                f"The session could not be read ({type(exc).__name__}); try again."
            ) from exc
        if own is None or own.user_id != user_id:
            raise SessionNotFoundError(f"No session {session_id!r} for user {user_id!r}.")
        remembered = ConversationHistory(session_id=session_id)
        try:
            remembered = await self.memory.history(session_id, HISTORY_VIEW_ENTRIES)
        except (DaprClientError, MemoryReadError, ValidationError) as exc:
            logger.warning(
                "History of %s unavailable, using the recent turns: %s",
                session_id, type(exc).__name__,
            )  # fmt: skip
        history = merge_recent(remembered.history, own, HISTORY_VIEW_ENTRIES)
        total = max(remembered.total_entries, len(history))
        return ConversationHistory(session_id=session_id, history=history, total_entries=total)

    async def forget_fact(self, user_id: str, fact_id: str, *, caller: str | None = None) -> None:
        """Have the memory service remove one fact; ``FactNotFoundError`` when it has none."""
        check_caller(caller, user_id)
        try:
            found = await self.memory.forget_fact(user_id, fact_id)
        except (DaprClientError, MemoryReadError) as exc:
            raise MemoryUnavailableError(
                f"The memory service could not forget the fact ({type(exc).__name__}); try again."
            ) from exc
        if not found:
            raise FactNotFoundError(f"User {user_id!r} has no fact {fact_id!r}.")

    async def forget(self, user_id: str, *, caller: str | None = None) -> Forgotten:
        """Have the memory service forget the user, then delete this service's records of the
        user's sessions and registration. If the memory service fails, nothing is deleted here
        (``MemoryUnavailableError``): the call can simply be repeated."""
        check_caller(caller, user_id)
        try:
            sessions = await self.memory.forget(user_id)
        except (DaprClientError, MemoryReadError) as exc:
            raise MemoryUnavailableError(
                f"The memory service could not forget user {user_id!r} ({type(exc).__name__}); "
                "nothing was deleted: try again."
            ) from exc
        deleted = await self.turns.forget(user_id, sessions)
        logger.info("Forgot user %s: %d sessions, %d chat records", user_id, len(sessions), deleted)
        return Forgotten(status="forgotten", user_id=user_id, sessions=sessions)


def _elsewhere(memory: MemorySnapshot, session_id: str) -> list[SearchResult]:
    """The retrieved memories from other sessions (this one's recent turns are there anyway)."""
    return [found for found in memory.relevant if found.session_id != session_id]


def merge_recent(
    remembered: list[ConversationEntry], own: SessionRecord | None, limit: int
) -> list[ConversationEntry]:
    """The session's last ``limit`` entries from the memory service's history and this
    service's own record, each entry once, in time order."""
    if own is None:
        return remembered[-limit:] if limit else []
    seen: set[tuple[str, str, str]] = set()
    merged: list[ConversationEntry] = []
    for entry in sorted([*remembered, *own.entries()], key=lambda e: e.timestamp):
        identity = (entry.timestamp, entry.role, entry.content)
        if identity not in seen:
            seen.add(identity)
            merged.append(entry)
    return merged[-limit:] if limit else []
