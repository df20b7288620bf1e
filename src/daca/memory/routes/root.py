"""Welcome, health and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from daca.memory.deps import Services
from daca.memory.models import Health, Metrics, Welcome
from daca.memory.openapi import SERVICE_RESPONSES
from daca.telemetry.metrics import METRICS_RESPONSE, metrics_response

router = APIRouter(tags=["service"], responses=SERVICE_RESPONSES)

WELCOME = "Welcome to the DACA Agent Memory Service! Access /docs for the API documentation."


@router.get("/", response_model=Welcome)
async def root() -> Welcome:
    """The tutorial's welcome message."""
    return Welcome(message=WELCOME)


@router.get("/healthz", response_model=Health)
async def healthz(services: Services) -> Health:
    """Liveness, with the service's counters."""
    metrics = Metrics(**services.metrics())
    return Health(status="ok", app_id=services.settings.app_id, metrics=metrics)


@router.get("/metrics", response_class=Response, responses=METRICS_RESPONSE)
async def metrics(services: Services) -> Response:
    """Prometheus metrics: events by outcome, summary attempts, failures and lag, pending
    users, LLM calls (the same counters as JSON are on ``/healthz``)."""
    return metrics_response(services.prometheus.registry)
