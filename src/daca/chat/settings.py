"""The chat service's settings, read from the environment when ``ChatSettings()`` is built."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from daca.access.settings import AccessSettings
from daca.contracts.models import MAX_MESSAGE_CHARS
from daca.dapr.settings import DaprSettings
from daca.llm.settings import LLMSettings


class ChatSettings(BaseSettings):
    """Names, limits and timeouts of the chat service.

    The sidecar (``DAPR_*``) and the LLM (``GEMINI_*``, ``LLM_*``) are configured by their
    own settings classes, nested here so one object describes the service.
    """

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    dapr: DaprSettings = Field(default_factory=DaprSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)

    memory_app_id: str = Field(default="agent-memory-service", min_length=1)
    #: The chat's own state store, with Dapr's transactional outbox publishing to the
    #: conversations topic (components/chat-statestore.yaml).
    state_store: str = Field(default="chat-statestore", min_length=1, alias="CHAT_STATE_STORE")
    session_keep_turns: int = Field(default=10, ge=0)
    #: The session record expires this long after its last turn (as the memory service's
    #: history does with the same variable); unset keeps it.
    session_ttl_seconds: int | None = Field(default=None, ge=1)

    max_message_chars: int = Field(default=4000, ge=1, le=MAX_MESSAGE_CHARS)
    history_limit: int = Field(default=20, ge=0, le=1000)  # the context route's limit
    history_token_budget: int = Field(default=1500, ge=0)
    memories_per_message: int = Field(default=5, ge=0, le=50)
    memory_timeout_seconds: float = Field(default=3.0, gt=0)
    dapr_timeout_seconds: float = Field(default=10.0, gt=0)

    agent_timeout_seconds: float = Field(default=90.0, gt=0)
    agent_max_turns: int = Field(default=5, ge=1)

    publish_backoff_initial_seconds: float = Field(default=0.5, gt=0)
    publish_backoff_max_seconds: float = Field(default=30.0, gt=0)
    outbox_max_events: int = Field(default=1000, ge=1)
    shutdown_flush_seconds: float = Field(default=5.0, ge=0)
