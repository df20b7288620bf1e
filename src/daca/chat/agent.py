"""Runs the chat agent: the configured model, the personalised instructions, the time tool."""

from __future__ import annotations

import asyncio
import logging

from agents import Agent, AgentsException, Model, RunConfig, Runner
from openai import OpenAIError

from daca.chat.errors import ModelFailedError, ModelTimeoutError
from daca.llm.tools import get_current_time

logger = logging.getLogger(__name__)

_NO_TRACING = RunConfig(tracing_disabled=True)
_TIMEOUT_DETAIL = "The language model did not answer in time; nothing was stored, please retry."
_FAILED_DETAIL = "The language model failed to answer; nothing was stored, please retry."


class ChatAgent:
    """Answers one message per call; every LLM failure becomes a ``ChatError``."""

    def __init__(self, model: Model, *, timeout: float, max_turns: int) -> None:
        self._model = model
        self._timeout = timeout
        self._max_turns = max_turns

    def _agent(self, instructions: str) -> Agent[None]:
        """The agent for one turn."""
        return Agent(
            name="ChatAgent", instructions=instructions, tools=[get_current_time], model=self._model
        )

    async def reply(self, instructions: str, text: str, *, turn_id: str) -> str:
        """The agent's reply to ``text``; raises ``ModelFailedError`` / ``ModelTimeoutError``."""
        try:
            output = await self._run(instructions, text)
        except TimeoutError as exc:
            logger.warning("Turn %s: the model did not answer within %s s", turn_id, self._timeout)
            raise ModelTimeoutError(_TIMEOUT_DETAIL) from exc
        except (AgentsException, OpenAIError) as exc:
            logger.warning("Turn %s: the model failed: %s", turn_id, type(exc).__name__)
            raise ModelFailedError(_FAILED_DETAIL) from exc
        return _text(output, turn_id)

    async def _run(self, instructions: str, text: str) -> object:
        """One agent run within the time limit; its final output."""
        agent = self._agent(instructions)
        async with asyncio.timeout(self._timeout):
            result = await Runner.run(
                agent, text, max_turns=self._max_turns, run_config=_NO_TRACING
            )
        return result.final_output


def _text(output: object, turn_id: str) -> str:
    """The final output as non-empty text."""
    text = str(output or "").strip()
    if not text:
        logger.warning("Turn %s: the model returned an empty reply", turn_id)
        raise ModelFailedError(
            "The language model returned an empty reply; nothing was stored, please retry."
        )
    return text
