"""Runs the chat agent: the configured model, the personalised instructions, the time tool.

``reply`` returns the whole answer; ``stream`` yields it as it is generated (``Delta``), with
each tool call and output as it happens, then ``Final``. Both map every model failure to a
``ChatError`` and bound the whole run by the same time limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from agents import (
    Agent,
    AgentsException,
    Model,
    RawResponsesStreamEvent,
    RunConfig,
    RunItemStreamEvent,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
)
from openai import OpenAIError
from openai.types.responses import ResponseTextDeltaEvent

from daca.chat.errors import ModelFailedError, ModelTimeoutError
from daca.llm.tools import get_current_time

logger = logging.getLogger(__name__)

_NO_TRACING = RunConfig(tracing_disabled=True)
_TIMEOUT_DETAIL = "The language model did not answer in time; nothing was stored, please retry."
_FAILED_DETAIL = "The language model failed to answer; nothing was stored, please retry."


@dataclass(frozen=True)
class Delta:
    """A piece of the reply's text."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """The agent called a tool."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ToolOutput:
    """A tool answered."""

    output: str


@dataclass(frozen=True)
class Final:
    """The whole reply."""

    text: str


StreamItem = Delta | ToolCall | ToolOutput | Final


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
        with self._model_errors(turn_id):
            output = await self._run(instructions, text)
        return _text(output, turn_id)

    async def stream(
        self, instructions: str, text: str, *, turn_id: str
    ) -> AsyncIterator[StreamItem]:
        """The reply to ``text`` as it is generated, then ``Final``; raises
        ``ModelFailedError`` / ``ModelTimeoutError`` (possibly after some deltas)."""
        agent = self._agent(instructions)
        with self._model_errors(turn_id):
            async with asyncio.timeout(self._timeout):
                result = Runner.run_streamed(
                    agent, text, max_turns=self._max_turns, run_config=_NO_TRACING
                )
                async for event in result.stream_events():
                    item = _stream_item(event)
                    if item is not None:
                        yield item
        yield Final(_text(result.final_output, turn_id))

    @contextmanager
    def _model_errors(self, turn_id: str) -> Iterator[None]:
        """Every model failure in the block as a ``ChatError`` (logged without contents)."""
        try:
            yield
        except TimeoutError as exc:
            logger.warning("Turn %s: the model did not answer within %s s", turn_id, self._timeout)
            raise ModelTimeoutError(_TIMEOUT_DETAIL) from exc
        except (AgentsException, OpenAIError) as exc:
            logger.warning("Turn %s: the model failed: %s", turn_id, type(exc).__name__)
            raise ModelFailedError(_FAILED_DETAIL) from exc

    async def _run(self, instructions: str, text: str) -> object:
        """One agent run within the time limit; its final output."""
        agent = self._agent(instructions)
        async with asyncio.timeout(self._timeout):
            result = await Runner.run(
                agent, text, max_turns=self._max_turns, run_config=_NO_TRACING
            )
        return result.final_output


def _stream_item(event: object) -> StreamItem | None:
    """What a client is shown of one SDK stream event (``None``: nothing)."""
    if isinstance(event, RawResponsesStreamEvent):
        if isinstance(event.data, ResponseTextDeltaEvent) and event.data.delta:
            return Delta(event.data.delta)
        return None
    if isinstance(event, RunItemStreamEvent):
        if isinstance(event.item, ToolCallItem):
            raw = event.item.raw_item
            name = str(getattr(raw, "name", "") or "")
            return ToolCall(name=name, arguments=str(getattr(raw, "arguments", "") or ""))
        if isinstance(event.item, ToolCallOutputItem):
            return ToolOutput(output=str(event.item.output))
    return None


def _text(output: object, turn_id: str) -> str:
    """The final output as non-empty text."""
    text = str(output or "").strip()
    if not text:
        logger.warning("Turn %s: the model returned an empty reply", turn_id)
        raise ModelFailedError(
            "The language model returned an empty reply; nothing was stored, please retry."
        )
    return text
