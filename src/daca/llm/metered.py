"""A ``Model`` that counts each LLM call it makes: latency, outcome and tokens, by purpose.

It wraps whichever model the settings chose (OpenAI-compatible, Gemini, offline, or a test's),
so every call the Agents SDK makes through it, the tool-call round trips included, is one
observation in ``daca_llm_*`` (``daca.telemetry.metrics.LLMMetrics``). Message contents are
never looked at.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from typing import Any

from agents import Model, ModelResponse, ModelRetryAdvice, ModelRetryAdviceRequest
from agents.items import TResponseStreamEvent
from openai.types.responses import ResponseCompletedEvent
from opentelemetry import trace

from daca.telemetry import tracing
from daca.telemetry.metrics import LLMMetrics


class MeteredModel(Model):
    """``model``, with each call observed under ``purpose``."""

    def __init__(self, model: Model, metrics: LLMMetrics, purpose: str) -> None:
        self._model = model
        self._metrics = metrics
        self._purpose = purpose
        self._name = str(getattr(model, "model", "") or type(model).__name__)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        started, outcome, usage = time.perf_counter(), "error", (0, 0)
        with self._span() as span:
            try:
                response = await self._model.get_response(*args, **kwargs)
                outcome = "ok"
                usage = (response.usage.input_tokens, response.usage.output_tokens)
                return response
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            finally:
                self._observe(span, outcome, started, usage)

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        started, outcome, usage = time.perf_counter(), "error", (0, 0)
        with self._span() as span:
            try:
                async for event in self._model.stream_response(*args, **kwargs):
                    if isinstance(event, ResponseCompletedEvent) and event.response.usage:
                        reported = event.response.usage
                        usage = (reported.input_tokens, reported.output_tokens)
                    yield event
                outcome = "ok"
            except (asyncio.CancelledError, GeneratorExit):
                outcome = "cancelled"
                raise
            finally:
                self._observe(span, outcome, started, usage)

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self._model.get_retry_advice(request)

    async def close(self) -> None:
        await self._model.close()

    def _span(self) -> AbstractContextManager[trace.Span]:
        """A span for one call: its purpose and model, never the messages."""
        attributes = {"gen_ai.operation.name": self._purpose, "gen_ai.request.model": self._name}
        return tracing.tracer(__name__).start_as_current_span(
            f"llm {self._purpose}", kind=trace.SpanKind.CLIENT, attributes=attributes
        )

    def _observe(
        self, span: trace.Span, outcome: str, started: float, usage: tuple[int, int]
    ) -> None:
        self._metrics.observe(
            self._purpose, outcome, time.perf_counter() - started,
            input_tokens=usage[0], output_tokens=usage[1],
        )  # fmt: skip
        span.set_attribute("gen_ai.usage.input_tokens", usage[0])
        span.set_attribute("gen_ai.usage.output_tokens", usage[1])
        span.set_attribute("daca.outcome", outcome)
