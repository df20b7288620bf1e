"""The memory service's HTTP answers that are not wire models shared with the chat service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from daca.contracts.ids import Identifier
from daca.contracts.models import UserMetadata
from daca.contracts.openapi import ErrorDetail


class Welcome(BaseModel):
    """``GET /``."""

    message: str


class Metrics(BaseModel):
    """The counters since the process started (``daca.memory.metrics.Counters``) and the
    users whose summary is due."""

    model_config = ConfigDict(extra="forbid")

    events_handled: int = Field(ge=0)
    duplicates_skipped: int = Field(ge=0)
    events_dropped: int = Field(ge=0)
    events_retried: int = Field(ge=0)
    dead_letters_stored: int = Field(ge=0)
    summary_calls: int = Field(ge=0)
    summary_failures: int = Field(ge=0)
    append_conflicts: int = Field(ge=0)
    pending_users: int = Field(ge=0)


class Health(BaseModel):
    """``GET /healthz``: liveness, the app id and the counters."""

    status: Literal["ok"]
    app_id: str
    metrics: Metrics


class Initialized(BaseModel):
    """``POST /memories/{user_id}/initialize``: the user's metadata as now stored."""

    status: Literal["success"]
    user_id: Identifier
    metadata: UserMetadata


class Forgotten(BaseModel):
    """``DELETE /memories/{user_id}``: the user's sessions that were forgotten, and how many
    records were deleted."""

    status: Literal["forgotten"]
    user_id: Identifier
    sessions: list[Identifier]
    records_deleted: int = Field(ge=0)


class FactDeleted(BaseModel):
    """``DELETE /memories/{user_id}/facts/{fact_id}``."""

    status: Literal["deleted"]
    user_id: Identifier
    fact_id: Identifier


class DeadLetterList(BaseModel):
    """``GET /deadletters``: the kept dead letters, oldest first."""

    count: int = Field(ge=0)
    events: list[dict[str, Any]]


class Replayed(BaseModel):
    """``POST /deadletters/replay``: how many dead letters were republished, and kept."""

    replayed: int = Field(ge=0)
    skipped: int = Field(ge=0)


class SidecarError(ErrorDetail):
    """502: the sidecar answered with an error; ``errorCode`` is Dapr's, when it gave one."""

    errorCode: str | None = None
