"""One chat turn and one registration, without HTTP: the logic the routes call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import uuid4

from daca.chat.agent import ChatAgent
from daca.chat.errors import BacklogFullError, InvalidMessageError, MessageTooLongError
from daca.chat.memory_client import MemoryClient
from daca.chat.models import Message, Response, ResponseMetadata, UserRegistration
from daca.chat.publisher import EventPublisher
from daca.chat.settings import ChatSettings
from daca.contracts.events import ConversationUpdated, UserRegistered
from daca.contracts.models import MAX_REPLY_CHARS
from daca.llm.prompts import build_chat_instructions

logger = logging.getLogger(__name__)


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


def new_id() -> str:
    """A fresh session or turn id (uuid4 hex)."""
    return uuid4().hex


@dataclass(frozen=True)
class ChatService:
    """Answers messages and registers users; stores nothing itself."""

    settings: ChatSettings
    memory: MemoryClient
    agent: ChatAgent
    publisher: EventPublisher

    async def answer(self, message: Message) -> Response:
        """Read memory, run the agent, publish ``ConversationUpdated``, return the reply."""
        text = check_text(message.text, self.settings.max_message_chars)
        if not self.publisher.accepting:
            raise BacklogFullError("Too many events wait to be published; try again shortly.")
        session_id = (message.metadata and message.metadata.session_id) or new_id()
        turn_id = new_id()
        reply = await self._reply(message.user_id, session_id, text, turn_id)
        await self._publish_turn(message.user_id, session_id, turn_id, text, reply)
        return Response(
            user_id=message.user_id, reply=reply, metadata=ResponseMetadata(session_id=session_id)
        )

    async def _reply(self, user_id: str, session_id: str, text: str, turn_id: str) -> str:
        """The agent's reply, with what the memory service knows in its instructions."""
        limit = self.settings.history_limit
        memory = await self.memory.snapshot(user_id, session_id, limit)
        budget = self.settings.history_token_budget
        instructions = build_chat_instructions(memory.metadata, memory.recent, token_budget=budget)
        return await self.agent.reply(instructions, text, turn_id=turn_id)

    async def _publish_turn(
        self, user_id: str, session_id: str, turn_id: str, text: str, reply: str
    ) -> None:
        """Publish the turn (queued for retry if the sidecar refuses)."""
        if len(reply) > MAX_REPLY_CHARS:
            logger.warning("turn %s: reply of %d characters stored truncated", turn_id, len(reply))
        event = ConversationUpdated(
            user_id=user_id, session_id=session_id, turn_id=turn_id,
            user_message=text, assistant_reply=reply[:MAX_REPLY_CHARS],
        )  # fmt: skip
        topic = self.settings.conversations_topic
        await self.publisher.publish(topic, event, event_id=turn_id)
        logger.info("Turn %s of session %s answered for user %s", turn_id, session_id, user_id)

    async def register(self, registration: UserRegistration) -> UserRegistered:
        """Publish ``UserRegistered`` (queued for retry if the sidecar refuses)."""
        event = UserRegistered(**registration.model_dump())
        event_id = f"user-{registration.user_id}-{new_id()}"
        await self.publisher.publish(self.settings.users_topic, event, event_id=event_id)
        return event
