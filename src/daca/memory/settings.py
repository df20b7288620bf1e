"""Settings of the memory service (pydantic-settings, built by the app factory)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from daca.access.settings import AccessSettings
from daca.dapr.settings import DaprSettings


class MemorySettings(BaseSettings):
    """Component names, history paging, summary timing and the Dapr connection.

    As in ``ChatSettings``, the sidecar (``DAPR_*``, ``APP_API_TOKEN``) and the access mode are
    configured by their own settings classes, nested here so one object describes the service.
    """

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    dapr: DaprSettings = Field(default_factory=DaprSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    app_id: str = Field(default="agent-memory-service", validation_alias="APP_ID")
    state_store: str = Field(default="statestore", validation_alias="STATE_STORE")
    pubsub_name: str = Field(default="pubsub", validation_alias="PUBSUB_NAME")
    page_size: int = Field(default=50, ge=2, le=1000, validation_alias="MEMORY_PAGE_SIZE")
    append_max_attempts: int = Field(
        default=50, ge=1, validation_alias="MEMORY_APPEND_MAX_ATTEMPTS"
    )
    dead_letter_limit: int = Field(default=1000, ge=1, validation_alias="MEMORY_DEAD_LETTER_LIMIT")
    dapr_timeout_seconds: float = Field(default=10.0, gt=0, validation_alias="DAPR_TIMEOUT_SECONDS")
    summary_debounce_seconds: float = Field(
        default=2.0, ge=0, validation_alias="SUMMARY_DEBOUNCE_SECONDS"
    )
    summary_max_delay_seconds: float = Field(
        default=30.0, ge=0, validation_alias="SUMMARY_MAX_DELAY_SECONDS"
    )
    #: A user's summaries are at least this far apart (see ``daca.memory.summarizer``) ...
    summary_min_interval_seconds: float = Field(
        default=30.0, ge=0, validation_alias="SUMMARY_MIN_INTERVAL_SECONDS"
    )
    #: Once this many turns wait, the summary is due at once (debounce, max delay and interval
    #: aside): so it is never much more than this many turns behind.
    summary_max_pending_turns: int = Field(
        default=20, ge=1, validation_alias="SUMMARY_MAX_PENDING_TURNS"
    )
    summary_timeout_seconds: float = Field(
        default=60.0, gt=0, validation_alias="SUMMARY_TIMEOUT_SECONDS"
    )
    summary_retry_base_seconds: float = Field(
        default=1.0, gt=0, validation_alias="SUMMARY_RETRY_BASE_SECONDS"
    )
    summary_retry_max_seconds: float = Field(
        default=60.0, gt=0, validation_alias="SUMMARY_RETRY_MAX_SECONDS"
    )
    summary_max_batch: int = Field(default=100, ge=1, validation_alias="SUMMARY_MAX_BATCH")
    #: Sessions' turns expire this long after they were stored (history, idempotency markers
    #: and their entries in the search log); unset keeps them until the user is forgotten.
    session_ttl_seconds: int | None = Field(
        default=None, ge=1, validation_alias="SESSION_TTL_SECONDS"
    )

    embeddings_base_url: str | None = Field(default=None, validation_alias="EMBEDDINGS_BASE_URL")
    embeddings_model: str | None = Field(default=None, validation_alias="EMBEDDINGS_MODEL")
    embeddings_api_key: SecretStr | None = Field(
        default=None, validation_alias="EMBEDDINGS_API_KEY"
    )
    embeddings_timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias="EMBEDDINGS_TIMEOUT_SECONDS"
    )

    @model_validator(mode="after")
    def _embeddings_need_both(self) -> Self:
        """An embeddings endpoint needs a model, and a model an endpoint."""
        if bool(self.embeddings_base_url) != bool(self.embeddings_model):
            raise ValueError("set both EMBEDDINGS_BASE_URL and EMBEDDINGS_MODEL, or neither")
        return self

    @model_validator(mode="after")
    def _production_needs_the_app_token(self) -> Self:
        """In production mode only the sidecar may call the service: it must have a token."""
        if self.access.production and not self.dapr.app_api_token:
            raise ValueError("production mode (DACA_MODE=production) needs APP_API_TOKEN")
        return self

    @field_validator("page_size")
    @classmethod
    def _even_page_size(cls, value: int) -> int:
        """A turn is two entries; an even page size means a turn never spans two pages."""
        if value % 2:
            raise ValueError("page_size must be even")
        return value
