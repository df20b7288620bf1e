"""``GET /``, ``GET /healthz`` and ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from daca.chat.deps import Chat
from daca.chat.models import Health, RecorderCounters, Welcome
from daca.chat.openapi import ROOT_RESPONSES
from daca.telemetry.metrics import METRICS_RESPONSE, metrics_response

router = APIRouter(tags=["service"], responses=ROOT_RESPONSES)


@router.get("/", response_model=Welcome)
async def root() -> Welcome:
    """A welcome message."""
    return Welcome(
        message="Welcome to the DACA Chat Service! Access /docs for the API documentation."
    )


@router.get("/healthz", response_model=Health)
async def healthz(request: Request, service: Chat) -> Health:
    """Liveness, the model in use and the turn recorder's counters."""
    return Health(
        status="ok",
        model=request.app.state.model_description,
        recorder=RecorderCounters(**service.recorder.stats.as_dict()),
    )


@router.get("/metrics", response_class=Response, responses=METRICS_RESPONSE)
async def metrics(service: Chat) -> Response:
    """Prometheus metrics: turn latency by phase, LLM calls, the turn recorder's counters."""
    return metrics_response(service.metrics.registry)
