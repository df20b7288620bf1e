"""The offline model driven through the Agents SDK's real ``Runner``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from agents import Agent, RunConfig, Runner
from agents.items import ToolCallItem, ToolCallOutputItem

from daca.contracts.models import ConversationEntry, ConversationTurn, UserMetadata
from daca.llm.offline import OfflineModel
from daca.llm.prompts import build_chat_instructions
from daca.llm.summary import LLMSummaryWriter
from daca.llm.tools import get_current_time

TS = "2025-01-01T10:00:00+00:00"
NO_TRACING = RunConfig(tracing_disabled=True)


def chat_agent(instructions: str = "You are helpful.") -> Agent[None]:
    return Agent(
        name="Chat", instructions=instructions, tools=[get_current_time], model=OfflineModel()
    )


def entry(role: str, content: str) -> ConversationEntry:
    return ConversationEntry.model_validate({"role": role, "content": content, "timestamp": TS})


def turn(index: int, user_message: str) -> ConversationTurn:
    return ConversationTurn(
        session_id="s1", turn_id=f"t{index}", user_message=user_message,
        assistant_reply="Noted, thanks!", timestamp=TS,
    )  # fmt: skip


async def test_a_time_question_calls_the_tool_and_answers_with_its_output() -> None:
    result = await Runner.run(chat_agent(), "What time is it?", run_config=NO_TRACING)
    kinds = [type(item) for item in result.new_items]
    assert kinds[:2] == [ToolCallItem, ToolCallOutputItem]
    stamp = re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", str(result.final_output))
    assert stamp is not None
    assert abs(datetime.fromisoformat(stamp.group()) - datetime.now(UTC)) < timedelta(minutes=1)


async def test_without_the_tool_a_time_question_is_not_a_tool_call() -> None:
    agent = Agent(name="Chat", instructions="", model=OfflineModel())
    result = await Runner.run(agent, "What time is it?", run_config=NO_TRACING)
    assert not any(isinstance(item, ToolCallItem) for item in result.new_items)
    assert "offline model" in str(result.final_output)


async def test_a_question_is_answered_from_the_recent_turns() -> None:
    recent = [entry("user", "I'm planning to go to SF tomorrow."), entry("assistant", "Nice!")]
    instructions = build_chat_instructions(UserMetadata(name="Ana"), recent, token_budget=500)
    question = "Where was I planning to go tomorrow?"
    result = await Runner.run(chat_agent(instructions), question, run_config=NO_TRACING)
    assert "SF" in str(result.final_output)
    assert "offline model" in str(result.final_output)


async def test_a_question_is_answered_from_the_summary() -> None:
    metadata = UserMetadata(user_summary="My name is Ana. My favourite drink is green tea.")
    instructions = build_chat_instructions(metadata, [], token_budget=500)
    result = await Runner.run(
        chat_agent(instructions), "What's my favourite drink?", run_config=NO_TRACING
    )
    assert "green tea" in str(result.final_output)


async def test_otherwise_it_acknowledges_by_name_in_the_preferred_style() -> None:
    metadata = UserMetadata(name="Ana", preferred_style="casual")
    instructions = build_chat_instructions(metadata, [], token_budget=500)
    result = await Runner.run(chat_agent(instructions), "Tell me a joke", run_config=NO_TRACING)
    assert str(result.final_output).startswith("Hey, Ana!")
    assert "offline model" in str(result.final_output)


async def test_replies_are_deterministic_and_report_usage() -> None:
    first = await Runner.run(chat_agent(), "Hello", run_config=NO_TRACING)
    second = await Runner.run(chat_agent(), "Hello", run_config=NO_TRACING)
    assert first.final_output == second.final_output
    usage = first.context_wrapper.usage
    assert usage.requests == 1
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


async def test_streaming_gives_the_same_answer_and_uses_the_tool() -> None:
    result = Runner.run_streamed(chat_agent(), "What's the date today?", run_config=NO_TRACING)
    events = [event async for event in result.stream_events()]
    assert events
    assert any(isinstance(item, ToolCallOutputItem) for item in result.new_items)
    assert "get_current_time" in str(result.final_output)


async def test_the_summary_keeps_earlier_facts_across_calls() -> None:
    writer = LLMSummaryWriter(OfflineModel())
    turns = [turn(1, "Hi! My name is Ana. The weather is nice."),
             turn(2, "I'm planning to go to SF tomorrow.")]  # fmt: skip
    first = (await writer.write(None, turns)).summary
    assert "My name is Ana." in first
    assert "SF" in first
    assert "weather" not in first
    second = (await writer.write(first, [turn(3, "I love green tea. What time is it?")])).summary
    assert "My name is Ana." in second
    assert "SF tomorrow" in second
    assert "I love green tea." in second
    assert "What time" not in second


async def test_a_summary_with_nothing_personal_says_so() -> None:
    writer = LLMSummaryWriter(OfflineModel())
    nothing = await writer.write(None, [turn(1, "What time is it?")])
    assert nothing.summary == "No personal facts shared yet."
    assert nothing.facts == []
    assert (
        "No personal"
        not in (await writer.write(nothing.summary, [turn(2, "I live in Porto.")])).summary
    )


async def test_the_summary_stays_bounded() -> None:
    turns = [turn(index, f"I visited city number {index} last year.") for index in range(40)]
    summary = (await LLMSummaryWriter(OfflineModel()).write(None, turns)).summary
    assert len(summary) <= 1200
    assert "city number 39" in summary
    assert "city number 0 " not in summary


async def test_from_env_without_configuration_is_offline() -> None:
    writer = LLMSummaryWriter.from_env()
    assert "I live in Porto." in (await writer.write(None, [turn(1, "I live in Porto.")])).summary
    await writer.aclose()


async def test_offline_facts_keep_plans_phrased_as_questions_and_drop_real_questions() -> None:
    turns = [turn(1, "I need to schedule a coding session."), turn(2, "What time is it?"),
             turn(3, "Tomorrow we will pack for SF?")]  # fmt: skip
    update = await LLMSummaryWriter(OfflineModel()).write(None, turns)
    assert [(f.text, f.turns[0].turn_id) for f in update.facts] == [
        ("I need to schedule a coding session.", "t1"),
        ("Tomorrow we will pack for SF.", "t3"),
    ]
    assert "Tomorrow we will pack for SF." in update.summary
    assert all(f.supersedes == [] for f in update.facts)


async def test_an_offline_fact_of_the_same_slot_supersedes_the_known_one() -> None:
    writer = LLMSummaryWriter(OfflineModel())
    known = [("f1", "I live in Lisbon."), ("f2", "I love green tea.")]
    update = await writer.write(None, [turn(4, "I moved to Berlin last week.")], known)
    [fact] = update.facts
    assert fact.text == "I moved to Berlin last week."
    assert fact.supersedes == ["f1"]
    repeated = await writer.write(None, [turn(5, "I love green tea!")], known)
    assert repeated.facts == []  # a known fact is not extracted twice
