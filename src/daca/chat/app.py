"""The chat service's app factory: ``uvicorn daca.chat.app:create_app --factory``.

The lifespan owns the long-lived objects: the Dapr client, the model (and its HTTP client) and
the turn recorder with its retry task. Nothing is read from the environment at import.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import httpx
from agents import Model
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from daca.access.guard import apply_mode
from daca.access.tokens import TokenVerifier
from daca.chat.agent import ChatAgent
from daca.chat.errors import ChatError
from daca.chat.memory_client import MemoryClient
from daca.chat.metrics import ChatMetrics
from daca.chat.openapi import access_responses, completion
from daca.chat.recorder import Backoff, TurnRecorder
from daca.chat.routes import chat, memories, root, ui, users
from daca.chat.service import ChatService
from daca.chat.settings import ChatSettings
from daca.chat.turnlog import TurnLog
from daca.contracts.openapi import DocumentedApp, answer_as_documented
from daca.dapr.client import DaprClient
from daca.heap import freeze_startup_heap
from daca.llm.factory import ModelChoice, build_model
from daca.llm.metered import MeteredModel
from daca.logsetup import configure_logging
from daca.telemetry import tracing

logger = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _model_choice(settings: ChatSettings, model: Model | None) -> ModelChoice:
    """The injected model, or the one the LLM settings select."""
    if model is not None:
        return ModelChoice(model=model, provider="injected", model_name=type(model).__name__)
    return build_model(settings.llm)


def _recorder(settings: ChatSettings) -> TurnRecorder:
    """The turn recorder, with the configured queue bound and backoff."""
    backoff = Backoff(
        settings.publish_backoff_initial_seconds, settings.publish_backoff_max_seconds
    )
    return TurnRecorder(max_pending=settings.outbox_max_events, backoff=backoff)


def _service(settings: ChatSettings, dapr: DaprClient, choice: ModelChoice) -> ChatService:
    """The chat service over the lifespan's clients; every LLM call is metered."""
    metrics = ChatMetrics()
    memory = MemoryClient(dapr, settings.memory_app_id, timeout=settings.memory_timeout_seconds)
    agent = ChatAgent(
        MeteredModel(choice.model, metrics.llm, "chat"),
        timeout=settings.agent_timeout_seconds,
        max_turns=settings.agent_max_turns,
    )
    turns = TurnLog(
        dapr,
        settings.state_store,
        keep_turns=settings.session_keep_turns,
        ttl=settings.session_ttl_seconds,
    )
    recorder = _recorder(settings)
    metrics.watch_recorder(lambda: recorder.stats.as_dict())
    return ChatService(settings, memory, agent, turns, recorder, metrics)


async def _open(
    stack: AsyncExitStack,
    settings: ChatSettings,
    model: Model | None,
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[ChatService, ModelChoice]:
    """Open the clients and start the recorder; ``stack`` closes them in reverse order."""
    dapr = DaprClient.from_settings(
        settings.dapr, timeout=settings.dapr_timeout_seconds, transport=transport
    )
    stack.push_async_callback(dapr.aclose)
    choice = _model_choice(settings, model)
    stack.push_async_callback(choice.aclose)
    service = _service(settings, dapr, choice)
    service.recorder.start()
    stack.push_async_callback(service.recorder.close, settings.shutdown_flush_seconds)
    return service, choice


def _lifespan(
    settings: ChatSettings, model: Model | None, transport: httpx.AsyncBaseTransport | None
) -> Lifespan:
    """The lifespan: open clients, start the recorder; on exit flush and close in order."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            service, choice = await _open(stack, settings, model, transport)
            app.state.chat_service = service
            app.state.model_description = choice.describe()
            logger.info(
                "Chat service ready: %s, sidecar %s", choice.describe(), settings.dapr.base_url
            )
            freeze_startup_heap()
            yield

    return lifespan


async def _chat_error(request: Request, exc: Exception) -> JSONResponse:
    """Render a ``ChatError`` as its status with ``{"detail": message}``."""
    status = exc.status_code if isinstance(exc, ChatError) else 500
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def create_app(
    settings: ChatSettings | None = None,
    *,
    model: Model | None = None,
    dapr_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The chat service app; ``model`` and ``dapr_transport`` are the test seams."""
    configure_logging()
    settings = settings or ChatSettings()
    tracing.configure("chat-service")
    app = DocumentedApp(
        title="DACA Chat Service",
        description="Chats with a user, remembering them through the memory service.",
        version="0.1.0",
        lifespan=_lifespan(settings, model, dapr_transport),
        complete=completion(settings),
    )
    answer_as_documented(app)
    app.add_exception_handler(ChatError, _chat_error)
    for router, acts_for_a_user in (
        (root.router, False),
        (chat.router, True),
        (users.router, True),
        (memories.router, True),
        (ui.router, True),
    ):
        responses = access_responses(settings.access, acts_for_a_user=acts_for_a_user)
        app.include_router(router, responses=responses)
    app.mount("/ui/assets", ui.assets(), name="ui-assets")
    app.state.token_verifier = (
        TokenVerifier(settings.access) if settings.access.production else None
    )
    apply_mode(app, settings.access, "chat service")
    tracing.instrument_app(app)
    return app
