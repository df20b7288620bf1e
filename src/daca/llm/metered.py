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
from typing import Any

from agents import Model, ModelResponse, ModelRetryAdvice, ModelRetryAdviceRequest
from agents.items import TResponseStreamEvent
from openai.types.responses import ResponseCompletedEvent

from daca.telemetry.metrics import LLMMetrics


class MeteredModel(Model):
    """``model``, with each call observed under ``purpose``."""

    def __init__(self, model: Model, metrics: LLMMetrics, purpose: str) -> None:
        self._model = model
        self._metrics = metrics
        self._purpose = purpose

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        started, outcome, usage = time.perf_counter(), "error", (0, 0)
        try:
            response = await self._model.get_response(*args, **kwargs)
            outcome = "ok"
            usage = (response.usage.input_tokens, response.usage.output_tokens)
            return response
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self._observe(outcome, started, usage)

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        started, outcome, usage = time.perf_counter(), "error", (0, 0)
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
            self._observe(outcome, started, usage)

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self._model.get_retry_advice(request)

    async def close(self) -> None:
        await self._model.close()

    def _observe(self, outcome: str, started: float, usage: tuple[int, int]) -> None:
        self._metrics.observe(
            self._purpose, outcome, time.perf_counter() - started,
            input_tokens=usage[0], output_tokens=usage[1],
        )  # fmt: skip
