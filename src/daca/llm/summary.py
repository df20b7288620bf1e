"""``LLMSummaryWriter``: rewrites a user's summary and extracts new facts, in one call.

It gets the previous summary, the known facts and a batch of new turns, and returns a
``MemoryUpdate`` (``daca.llm.memory_update``).

The memory service calls it off the chat request path. Every failure (the LLM erroring, the
client giving up, the time limit, an empty answer) surfaces as ``SummaryError``, so the caller
has one exception to handle and can keep the previous summary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Self

from agents import Agent, AgentsException, Model, RunConfig, Runner
from openai import OpenAIError

from daca.contracts.models import ConversationTurn
from daca.llm.factory import ModelChoice, build_model
from daca.llm.memory_update import MemoryUpdate, UnreadableUpdate, read_update
from daca.llm.metered import MeteredModel
from daca.llm.prompts import SUMMARY_INSTRUCTIONS, build_summary_input
from daca.llm.settings import LLMSettings
from daca.telemetry.metrics import LLMMetrics

logger = logging.getLogger(__name__)

DEFAULT_SUMMARY_TIMEOUT = 30.0


class SummaryError(Exception):
    """The summary could not be written (LLM failure, timeout, empty or unreadable output)."""


class LLMSummaryWriter:
    """Writes summaries with one agent run per call, bounded by ``timeout`` seconds."""

    def __init__(
        self,
        model: Model,
        *,
        timeout: float = DEFAULT_SUMMARY_TIMEOUT,
        choice: ModelChoice | None = None,
    ) -> None:
        self._agent = Agent(name="SummaryWriter", instructions=SUMMARY_INSTRUCTIONS, model=model)
        self._timeout = timeout
        self._choice = choice

    @classmethod
    def from_settings(
        cls,
        settings: LLMSettings,
        *,
        timeout: float = DEFAULT_SUMMARY_TIMEOUT,
        metrics: LLMMetrics | None = None,
    ) -> Self:
        """A writer using the model ``settings`` select (the offline model when none is set),
        its calls counted in ``metrics`` (purpose ``summary``) when given."""
        choice = build_model(settings)
        logger.info("Summary writer uses %s", choice.describe())
        model = choice.model if metrics is None else MeteredModel(choice.model, metrics, "summary")
        return cls(model, timeout=timeout, choice=choice)

    @classmethod
    def from_env(
        cls, *, timeout: float = DEFAULT_SUMMARY_TIMEOUT, metrics: LLMMetrics | None = None
    ) -> Self:
        """A writer configured from the environment and ``.env`` (see ``LLMSettings``)."""
        return cls.from_settings(LLMSettings(), timeout=timeout, metrics=metrics)

    async def aclose(self) -> None:
        """Close the model's HTTP client, if this writer built one."""
        if self._choice is not None:
            await self._choice.aclose()

    async def write(
        self,
        previous_summary: str | None,
        turns: Sequence[ConversationTurn],
        known_facts: Sequence[tuple[str, str]] = (),
    ) -> MemoryUpdate:
        """The updated summary and the new facts of ``turns``, given the ``known_facts`` as
        ``(fact_id, text)``; raises ``SummaryError`` on failure, timeout or unusable output."""
        summary_input = build_summary_input(previous_summary, turns, known_facts)
        output = str(await self._run(summary_input) or "")
        try:
            update = read_update(output, turns, {fact_id for fact_id, _ in known_facts})
        except UnreadableUpdate as exc:
            raise SummaryError(str(exc)) from exc
        if not update.summary:
            raise SummaryError("the model returned an empty summary")
        return update

    async def _run(self, summary_input: str) -> object:
        """One agent run, its failures mapped to ``SummaryError``."""
        config = RunConfig(tracing_disabled=True)
        try:
            async with asyncio.timeout(self._timeout):
                result = await Runner.run(self._agent, summary_input, run_config=config)
        except TimeoutError as exc:
            raise SummaryError(f"summary timed out after {self._timeout} s") from exc
        except (AgentsException, OpenAIError) as exc:
            raise SummaryError(f"summary failed: {type(exc).__name__}") from exc
        return result.final_output
