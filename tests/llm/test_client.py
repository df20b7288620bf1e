"""``ChatClient`` sends the Agents SDK's requests as ``openai.AsyncOpenAI`` sends them."""

from __future__ import annotations

from typing import Any

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    function_tool,
)
from openai import AsyncOpenAI

from daca.llm.client import ChatClient
from tests.fakes.openai_server import FakeOpenAIServer, text_reply, tool_call_reply


@function_tool
def city_of(name: str) -> str:
    """Where a person lives."""
    return f"{name} lives in Porto."


async def bodies(
    server: FakeOpenAIServer, client: AsyncOpenAI, *, stream: bool
) -> list[dict[str, Any]]:
    """The request bodies of one agent run with a tool call: its two model calls."""
    model = OpenAIChatCompletionsModel(model="fake-model", openai_client=client)
    settings = ModelSettings(temperature=0.2, extra_body={"user_tag": "t-1"})
    agent = Agent(
        name="Chat", instructions="Be brief.", tools=[city_of], model=model,
        model_settings=settings,
    )  # fmt: skip
    server.enqueue(tool_call_reply("city_of", '{"name": "Ana"}'), text_reply("In Porto."))
    before = len(server.requests)
    run_config = RunConfig(tracing_disabled=True)
    if stream:
        result = Runner.run_streamed(agent, "Where does Ana live?", run_config=run_config)
        async for _ in result.stream_events():
            pass
    else:
        result = await Runner.run(agent, "Where does Ana live?", run_config=run_config)
    await client.close()
    assert result.final_output == "In Porto."
    return [request.body for request in server.requests[before:]]


@pytest.mark.parametrize("stream", [False, True], ids=["reply", "stream"])
async def test_the_requests_are_those_of_the_openai_client(
    fake_llm: FakeOpenAIServer, stream: bool
) -> None:
    """Both calls of a tool round trip (system, user, assistant tool call and tool result
    messages; the tool's schema; settings; the caller's ``extra_body``) reach the server as
    the same JSON from ``ChatClient`` as from ``AsyncOpenAI``."""

    def client(kind: type[AsyncOpenAI]) -> AsyncOpenAI:
        return kind(base_url=fake_llm.base_url, api_key="sk-test", max_retries=0)

    plain = await bodies(fake_llm, client(AsyncOpenAI), stream=stream)
    ours = await bodies(fake_llm, client(ChatClient), stream=stream)
    assert ours == plain
    first, second = ours
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][3]["content"] == "Ana lives in Porto."
    assert [tool["function"]["name"] for tool in first["tools"]] == ["city_of"]
    assert (first["temperature"], first["user_tag"], first.get("stream", False)) == (
        0.2, "t-1", stream,
    )  # fmt: skip


async def test_with_options_keeps_the_client_kind(fake_llm: FakeOpenAIServer) -> None:
    """The Agents SDK copies the client (``with_options(max_retries=0)``) when it manages
    retries itself: the copy still sends its requests as given."""
    client = ChatClient(base_url=fake_llm.base_url, api_key="sk-test")
    copy = client.with_options(max_retries=0)
    assert isinstance(copy, ChatClient)
    assert type(copy.chat.completions).create is type(client.chat.completions).create
    await client.close()
