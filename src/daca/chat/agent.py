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
    RunContextWrapper,
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


@dataclass(frozen=True)
class _Turn:
    """The run context of one turn: its personalised instructions."""

    instructions: str


def _instructions(context: RunContextWrapper[_Turn], agent: Agent[_Turn]) -> str:
    """The turn's instructions, read by the SDK at the start of the run."""
    return context.context.instructions


class ChatAgent:
    """Answers one message per call; every LLM failure becomes a ``ChatError``.

    One ``Agent`` serves every turn, its instructions read from the turn's run context: an
    agent built per turn with its instructions as text cost the SDK a copy of that text in the
    agent's identity (hashed on every run) besides the construction, about 8% of a turn's CPU.
    """

    def __init__(self, model: Model, *, timeout: float, max_turns: int) -> None:
        self._agent = Agent[_Turn](
            name="ChatAgent", instructions=_instructions, tools=[get_current_time], model=model
        )
        self._timeout = timeout
        self._max_turns = max_turns

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
        with self._model_errors(turn_id):
            async with asyncio.timeout(self._timeout):
                result = Runner.run_streamed(
                    self._agent,
                    text,
                    context=_Turn(instructions),
                    max_turns=self._max_turns,
                    run_config=_NO_TRACING,
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
        async with asyncio.timeout(self._timeout):
            result = await Runner.run(
                self._agent,
                text,
                context=_Turn(instructions),
                max_turns=self._max_turns,
                run_config=_NO_TRACING,
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
