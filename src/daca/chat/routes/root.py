"""``GET /`` and ``GET /healthz``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from daca.chat.deps import Chat

router = APIRouter(tags=["service"])


@router.get("/")
async def root() -> dict[str, str]:
    """A welcome message."""
    return {"message": "Welcome to the DACA Chat Service! Access /docs for the API documentation."}


@router.get("/healthz")
async def healthz(request: Request, service: Chat) -> dict[str, Any]:
    """Liveness, the model in use and the turn recorder's counters."""
    return {
        "status": "ok",
        "model": request.app.state.model_description,
        "recorder": service.recorder.stats.as_dict(),
    }
