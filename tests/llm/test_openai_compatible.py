"""The OpenAI-compatible path: the real ``openai`` client against the fake server."""

from __future__ import annotations

import asyncio
import json

import pytest
from agents import Agent, RunConfig, Runner
from openai import APIStatusError

from daca.chat.agent import ChatAgent
from daca.contracts.models import ConversationTurn
from daca.llm.factory import ModelChoice, build_model
from daca.llm.prompts import SUMMARY_MARKER
from daca.llm.settings import LLMSettings
from daca.llm.summary import LLMSummaryWriter, SummaryError
from daca.llm.tools import get_current_time
from tests.fakes.openai_server import (
    HANG,
    FakeOpenAIServer,
    FakeReply,
    RecordedRequest,
    error_reply,
    text_reply,
    tool_call_reply,
)

NO_TRACING = RunConfig(tracing_disabled=True)
TURN = ConversationTurn(
    session_id="s1", turn_id="t1", user_message="I live in Porto.", assistant_reply="Nice!",
    timestamp="2025-01-01T10:00:00+00:00",
)  # fmt: skip


def settings_for(server: FakeOpenAIServer, **overrides: object) -> LLMSettings:
    values: dict[str, object] = {"llm_base_url": server.base_url, "llm_model": "fake-model",
                                 "llm_api_key": "sk-test", "llm_timeout_seconds": 5,
                                 "llm_max_retries": 0}  # fmt: skip
    return LLMSettings.model_validate({**values, **overrides})


def chat_agent(choice: ModelChoice) -> Agent[None]:
    return Agent(
        name="Chat", instructions="Be brief.", tools=[get_current_time], model=choice.model
    )


def answer_with_tool_output(request: RecordedRequest) -> FakeReply:
    return text_reply(f"It is {request.tool_outputs()[0]} right now.")


async def test_a_text_reply_travels_over_http(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(text_reply("Hello from the fake."))
    choice = build_model(settings_for(fake_llm))
    result = await Runner.run(chat_agent(choice), "Hi", run_config=NO_TRACING)
    await choice.aclose()
    assert result.final_output == "Hello from the fake."
    request = fake_llm.requests[0]
    assert request.body["model"] == "fake-model"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.system_prompt == "Be brief."


async def test_a_tool_call_round_trip(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(tool_call_reply("get_current_time"), answer_with_tool_output)
    choice = build_model(settings_for(fake_llm))
    result = await Runner.run(chat_agent(choice), "What time is it?", run_config=NO_TRACING)
    await choice.aclose()
    first, second = fake_llm.requests
    offered = [tool["function"]["name"] for tool in first.body["tools"]]
    assert offered == ["get_current_time"]
    tool_output = second.tool_outputs()[0]
    assert tool_output.endswith("+00:00")
    assert result.final_output == f"It is {tool_output} right now."


async def test_the_client_retries_a_server_error(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(error_reply(500), error_reply(429), text_reply("Recovered."))
    choice = build_model(settings_for(fake_llm, llm_max_retries=2))
    result = await Runner.run(chat_agent(choice), "Hi", run_config=NO_TRACING)
    await choice.aclose()
    assert result.final_output == "Recovered."
    assert len(fake_llm.requests) == 3


async def test_without_retries_the_error_surfaces(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(error_reply(500, "boom"))
    choice = build_model(settings_for(fake_llm))
    with pytest.raises(APIStatusError) as caught:
        await Runner.run(chat_agent(choice), "Hi", run_config=NO_TRACING)
    await choice.aclose()
    assert caught.value.status_code == 500


async def test_the_summary_writer_uses_the_configured_endpoint(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(text_reply("  Ana lives in Porto.  "))
    writer = LLMSummaryWriter.from_settings(settings_for(fake_llm))
    assert (await writer.write("Ana likes tea.", [TURN])).summary == "Ana lives in Porto."
    await writer.aclose()
    request = fake_llm.requests[0]
    assert request.system_prompt.startswith(SUMMARY_MARKER)
    user_text = json.dumps(request.messages[-1]["content"])
    assert "Ana likes tea." in user_text and "I live in Porto." in user_text


async def test_from_env_reads_the_endpoint(
    fake_llm: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("LLM_MODEL", "fake-model")
    fake_llm.enqueue(text_reply("Summary from env."))
    writer = LLMSummaryWriter.from_env()
    assert (await writer.write(None, [TURN])).summary == "Summary from env."
    await writer.aclose()


@pytest.mark.parametrize(
    ("reply", "message"),
    [(error_reply(500), "APIStatusError|InternalServerError"), (text_reply("   "), "empty")],
)
async def test_a_failing_server_is_a_summary_error(
    fake_llm: FakeOpenAIServer, reply: FakeReply, message: str
) -> None:
    fake_llm.enqueue(reply)
    writer = LLMSummaryWriter.from_settings(settings_for(fake_llm))
    with pytest.raises(SummaryError, match=message):
        await writer.write(None, [TURN])
    await writer.aclose()


async def test_a_hanging_server_hits_the_writer_timeout(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(HANG)
    writer = LLMSummaryWriter.from_settings(settings_for(fake_llm), timeout=0.3)
    with pytest.raises(SummaryError, match=r"timed out after 0\.3 s"):
        await writer.write(None, [TURN])
    await writer.aclose()


async def test_a_hanging_server_hits_the_client_timeout(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(HANG)
    writer = LLMSummaryWriter.from_settings(settings_for(fake_llm, llm_timeout_seconds=0.3))
    with pytest.raises(SummaryError, match="APITimeoutError"):
        await writer.write(None, [TURN])
    await writer.aclose()


async def test_the_memory_call_answers_a_summary_and_facts_with_provenance(
    fake_llm: FakeOpenAIServer,
) -> None:
    second = TURN.model_copy(update={"turn_id": "t2", "user_message": "We adopted a cat, Tom."})
    answer = {
        "summary": "The user lives in Porto and has a cat named Tom.",
        "facts": [
            {"text": "The user lives in Porto.", "turns": ["t1"], "supersedes": ["f3", "f99"]},
            {"text": "The user has a cat named Tom.", "turns": ["t2", "t7"], "supersedes": []},
            {"text": "The user likes cats.", "turns": [], "supersedes": "f4"},
            {"text": "  "},
        ],
    }
    fake_llm.enqueue(text_reply("Here it is:\n```json\n" + json.dumps(answer) + "\n```"))
    writer = LLMSummaryWriter.from_settings(settings_for(fake_llm))
    known = [("f3", "The user lives in Lisbon."), ("f4", "The user dislikes cats.")]
    update = await writer.write(None, [TURN, second], known)
    await writer.aclose()
    assert update.summary == answer["summary"]
    assert [(f.text, [t.turn_id for t in f.turns], f.supersedes) for f in update.facts] == [
        ("The user lives in Porto.", ["t1"], ["f3"]),  # f99 was never shown: ignored
        ("The user has a cat named Tom.", ["t2"], []),  # t7 is not a turn of the batch
        ("The user likes cats.", ["t2"], ["f4"]),  # no turn given: the closest one
    ]
    request = fake_llm.requests[0]
    assert "JSON" in request.system_prompt and "supersedes" in request.system_prompt
    user_text = request.messages[-1]["content"]
    assert "- [f3] The user lives in Lisbon." in json.dumps(user_text)
    assert "[t2] 2025-01-01" in json.dumps(user_text)


@pytest.mark.parametrize("answer", ['{"facts": []}', '{"summary": "x", ', "[1, 2]"])
async def test_an_unreadable_memory_answer_is_a_summary_error(
    fake_llm: FakeOpenAIServer, answer: str
) -> None:
    fake_llm.enqueue(text_reply(answer))
    writer = LLMSummaryWriter.from_settings(settings_for(fake_llm))
    with pytest.raises(SummaryError):
        await writer.write(None, [TURN])
    await writer.aclose()


async def test_one_chat_agent_gives_each_concurrent_turn_its_own_instructions(
    fake_llm: FakeOpenAIServer,
) -> None:
    """The chat's one ``Agent`` reads each turn's instructions from that run's context."""
    choice = build_model(settings_for(fake_llm))
    agent = ChatAgent(choice.model, timeout=5, max_turns=3)
    replies = await asyncio.gather(
        *(agent.reply(f"You talk to user {n}.", f"hi {n}", turn_id=f"t{n}") for n in range(8))
    )
    await choice.aclose()
    assert replies == ["This is the fake LLM."] * 8
    prompts = {request.messages[-1]["content"]: request.system_prompt
               for request in fake_llm.requests}  # fmt: skip
    assert prompts == {f"hi {n}": f"You talk to user {n}." for n in range(8)}
