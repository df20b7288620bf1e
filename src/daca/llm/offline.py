"""``OfflineModel``: a deterministic, network-free implementation of the Agents SDK ``Model``.

It is the default model where no LLM is configured, and the model the tests drive through the
SDK's real ``Runner``. In order of precedence it:

1. writes an extractive summary when the instructions are the summary task
   (``daca.llm.prompts.SUMMARY_MARKER``);
2. answers with the time once the ``get_current_time`` tool has answered, or calls that tool
   when the latest user message asks for the time or date and the tool is offered;
3. answers a question from the memory in the chat instructions when it matches a remembered
   statement well enough;
4. otherwise acknowledges the message, by name and in the preferred style when known.

Token usage is estimated at about four characters a token.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

from agents import FunctionTool, Model, ModelResponse, ModelSettings, ModelTracing, Tool, Usage
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

from daca.llm import offline_replies as replies
from daca.llm.prompts import SUMMARY_MARKER, estimate_tokens
from daca.llm.tools import CURRENT_TIME_TOOL_NAME

OFFLINE_MODEL_NAME = "daca-offline"
_RESPONSE_ID = "resp_offline"

Item = Mapping[str, Any]


def _items(input: str | list[TResponseInputItem]) -> list[Item]:
    """The input as a list of plain mappings (a string is one user message)."""
    if isinstance(input, str):
        return [{"role": "user", "content": input}]
    return [cast(Item, item) for item in input]


def _text(content: object) -> str:
    """The text of a message's content: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _latest_user(items: Sequence[Item]) -> tuple[int, str]:
    """The index and text of the latest user message (``(-1, "")`` when there is none)."""
    for index in range(len(items) - 1, -1, -1):
        if items[index].get("role") == "user":
            return index, _text(items[index].get("content"))
    return -1, ""


def _time_tool_output(items: Sequence[Item]) -> str | None:
    """The output of a ``get_current_time`` call among ``items``, if it has answered."""
    calls = {
        item.get("call_id")
        for item in items
        if item.get("type") == "function_call" and item.get("name") == CURRENT_TIME_TOOL_NAME
    }
    for item in items:
        if item.get("type") == "function_call_output" and item.get("call_id") in calls:
            return _text(item.get("output"))
    return None


def _offers_time_tool(tools: Sequence[Tool]) -> bool:
    """Whether the agent offers the ``get_current_time`` function tool."""
    return any(isinstance(t, FunctionTool) and t.name == CURRENT_TIME_TOOL_NAME for t in tools)


def _message(text: str) -> ResponseOutputMessage:
    """An assistant message output item."""
    part = ResponseOutputText(type="output_text", text=text, annotations=[])
    return ResponseOutputMessage(
        id="msg_offline", type="message", role="assistant", status="completed", content=[part]
    )


def _time_call(call_index: int) -> ResponseFunctionToolCall:
    """A call of the ``get_current_time`` tool (its id is derived from the input's length)."""
    call_id = f"call_offline_time_{call_index}"
    return ResponseFunctionToolCall(
        type="function_call", id=call_id, call_id=call_id, name=CURRENT_TIME_TOOL_NAME,
        arguments="{}", status="completed",
    )  # fmt: skip


def _chat_reply(
    instructions: str, items: Sequence[Item], tools: Sequence[Tool]
) -> TResponseOutputItem:
    """The reply to a chat turn: time, memory answer or acknowledgement."""
    index, user_text = _latest_user(items)
    tool_output = _time_tool_output(items[index + 1 :])
    if tool_output is not None:
        return _message(replies.time_answer(tool_output))
    if replies.asks_for_time(user_text) and _offers_time_tool(tools):
        return _time_call(len(items))
    memory = replies.parse_memory(instructions)
    answer = replies.answer_from_memory(user_text, memory)
    return _message(answer or replies.acknowledge(memory))


def _reply(instructions: str, items: Sequence[Item], tools: Sequence[Tool]) -> TResponseOutputItem:
    """The single output item the offline model produces for this call."""
    if SUMMARY_MARKER in instructions:
        return _message(replies.write_summary(_latest_user(items)[1]))
    return _chat_reply(instructions, items, tools)


def _usage(instructions: str, items: Sequence[Item], output: TResponseOutputItem) -> Usage:
    """Estimated token usage of one call."""
    sent = estimate_tokens(instructions) + estimate_tokens(json.dumps(items, default=str))
    received = estimate_tokens(output.model_dump_json())
    return Usage(
        requests=1, input_tokens=sent, output_tokens=received, total_tokens=sent + received
    )


def _response(output: TResponseOutputItem) -> Response:
    """A Responses-API ``Response`` wrapping ``output`` (for the stream's events)."""
    return Response(
        id=_RESPONSE_ID, created_at=0, model=OFFLINE_MODEL_NAME, object="response",
        output=[output], tool_choice="auto", tools=[], parallel_tool_calls=False,
        status="completed",
    )  # fmt: skip


def _chunks(text: str) -> list[str]:
    """``text`` in word-sized pieces that join back to it (each word with its leading space)."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


class OfflineModel(Model):
    """A deterministic model that needs no network and no key (see the module docstring)."""

    def _respond(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        tools: list[Tool],
    ) -> ModelResponse:
        """The model response for one call."""
        instructions = system_instructions or ""
        items = _items(input)
        output = _reply(instructions, items, tools)
        usage = _usage(instructions, items, output)
        return ModelResponse(output=[output], usage=usage, response_id=_RESPONSE_ID)

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        """Answer deterministically; see the module docstring for the behaviour."""
        return self._respond(system_instructions, input, tools)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        """The same answer as ``get_response``, streamed: created, the text word by word as
        deltas (a message's), item done, completed."""
        output = self._respond(system_instructions, input, tools).output[0]
        response = _response(output)
        started = response.model_copy(update={"output": [], "status": "in_progress"})
        yield ResponseCreatedEvent(type="response.created", response=started, sequence_number=0)
        sequence = 1
        if isinstance(output, ResponseOutputMessage):
            text = "".join(part.text for part in output.content if hasattr(part, "text"))
            for chunk in _chunks(text):
                yield ResponseTextDeltaEvent(
                    type="response.output_text.delta", delta=chunk, item_id=output.id,
                    output_index=0, content_index=0, sequence_number=sequence, logprobs=[],
                )  # fmt: skip
                sequence += 1
        yield ResponseOutputItemDoneEvent(
            type="response.output_item.done", item=output, output_index=0,
            sequence_number=sequence,
        )  # fmt: skip
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=sequence + 1
        )
