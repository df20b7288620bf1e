"""Welcome, health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from daca.memory.deps import Services

router = APIRouter(tags=["service"])

WELCOME = "Welcome to the DACA Agent Memory Service! Access /docs for the API documentation."


@router.get("/")
async def root() -> dict[str, str]:
    """The tutorial's welcome message."""
    return {"message": WELCOME}


@router.get("/healthz")
async def healthz(services: Services) -> dict[str, Any]:
    """Liveness, with the service's counters."""
    return {"status": "ok", "app_id": services.settings.app_id, "metrics": services.metrics()}


@router.get("/metrics")
async def metrics(services: Services) -> dict[str, int]:
    """Events handled, duplicates skipped, summary calls and failures, pending users."""
    return services.metrics()
