"""``ChatClient`` sends the Agents SDK's requests as ``openai.AsyncOpenAI`` sends them, and
answers, fails and retries as it does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
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
from openai import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncOpenAI,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)

from daca.llm.client import ChatClient, _env_proxy, _time_limit
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    FakeReply,
    error_reply,
    text_reply,
    tool_call_reply,
)


@function_tool
def city_of(name: str) -> str:
    """Where a person lives."""
    return f"{name} lives in Porto."


#: The headers both clients must send alike (the SDK's identification headers aside).
SAME_HEADERS = ("authorization", "content-type", "accept", "user-agent", "x-team")


async def bodies(
    server: FakeOpenAIServer, client: AsyncOpenAI, *, stream: bool
) -> list[dict[str, Any]]:
    """The request bodies of one agent run with a tool call, its two model calls, each with
    the ``SAME_HEADERS`` it was sent with (under ``"headers"``)."""
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
    return [
        {**request.body, "headers": {h: request.headers.get(h) for h in SAME_HEADERS}}
        for request in server.requests[before:]
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["reply", "stream"])
async def test_the_requests_are_those_of_the_openai_client(
    fake_llm: FakeOpenAIServer, stream: bool
) -> None:
    """Both calls of a tool round trip (system, user, assistant tool call and tool result
    messages; the tool's schema; settings; the caller's ``extra_body``) reach the server as
    the same JSON from ``ChatClient`` as from ``AsyncOpenAI``."""

    def client(kind: type[AsyncOpenAI]) -> AsyncOpenAI:
        return kind(
            base_url=fake_llm.base_url, api_key="sk-test", max_retries=0,
            default_headers={"X-Team": "memory"},
        )  # fmt: skip

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
    assert first["headers"]["authorization"] == "Bearer sk-test"
    assert first["headers"]["user-agent"].startswith("Agents/Python")
    assert first["headers"]["x-team"] == "memory"


async def test_with_options_keeps_the_client_kind(fake_llm: FakeOpenAIServer) -> None:
    """The Agents SDK copies the client (``with_options(max_retries=0)``) when it manages
    retries itself: the copy still sends its requests as given."""
    client = ChatClient(base_url=fake_llm.base_url, api_key="sk-test")
    copy = client.with_options(max_retries=0)
    assert isinstance(copy, ChatClient)
    assert type(copy.chat.completions).create is type(client.chat.completions).create
    assert copy._lean is client._lean and copy.max_retries == 0  # one pool of connections
    await client.close()


def _client(server: FakeOpenAIServer, retries: int) -> ChatClient:
    return ChatClient(base_url=server.base_url, api_key="sk-test", max_retries=retries, timeout=5)


async def _complete(client: ChatClient) -> Any:
    try:
        return await client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "Hi"}]
        )
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("reply", "error", "sent"),
    [(error_reply(400, "bad model"), BadRequestError, 1),
     (error_reply(429), RateLimitError, 3),
     (FakeReply(status=500, body={"error": {"message": "no"}}, headers={"x-should-retry": "false"}),
      InternalServerError, 1)],
    ids=["not-retried", "retried", "server-says-no"],
)  # fmt: skip
async def test_an_error_answer_is_the_sdks_exception_after_the_sdks_retries(
    fake_llm: FakeOpenAIServer, reply: FakeReply, error: type[Exception], sent: int
) -> None:
    fake_llm.enqueue(reply, reply, reply)
    with pytest.raises(error) as caught:
        await _complete(_client(fake_llm, retries=2))
    assert len(fake_llm.requests) == sent
    assert "Error code:" in str(caught.value)


async def test_a_retried_error_can_recover(fake_llm: FakeOpenAIServer) -> None:
    fake_llm.enqueue(error_reply(503), text_reply("Back."))
    completion = await _complete(_client(fake_llm, retries=1))
    assert completion.choices[0].message.content == "Back."
    assert len(fake_llm.requests) == 2


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening: a connection to it is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


async def test_an_unreachable_server_is_a_connection_error(refusing_port: int) -> None:
    client = ChatClient(
        base_url=f"http://127.0.0.1:{refusing_port}/v1", api_key="sk-test", max_retries=0
    )
    with pytest.raises(APIConnectionError):
        await _complete(client)


async def test_an_answer_with_fields_left_out_is_still_read(fake_llm: FakeOpenAIServer) -> None:
    """Some OpenAI-compatible servers leave out fields the OpenAI schema requires."""
    message = {"role": "assistant", "content": "Hi there."}
    fake_llm.enqueue(FakeReply(body={"choices": [{"index": 0, "message": message}]}))
    completion = await _complete(_client(fake_llm, retries=0))
    assert completion.choices[0].message.content == "Hi there."


def test_the_proxy_is_the_environments_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the openai SDK's client: ``HTTPS_PROXY``/``HTTP_PROXY`` by scheme, ``NO_PROXY``
    obeyed."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,local.test")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    assert _env_proxy("https://generativelanguage.googleapis.com/v1beta/openai/") == (
        "http://proxy.test:3128"
    )
    assert _env_proxy("https://local.test/v1") is None
    assert _env_proxy("http://127.0.0.1:8000/v1") is None
    assert _env_proxy("http://other.test/v1") is None  # no HTTP_PROXY


def test_the_timeout_is_the_clients() -> None:
    assert _time_limit(2.5).total == 2.5
    default = _time_limit(ChatClient(api_key="sk-test").timeout)  # the SDK's default Timeout
    assert (default.total, default.sock_connect, default.sock_read) == (None, 5.0, 600.0)


async def test_a_success_that_is_not_json_is_the_sdks_validation_error(
    fake_llm: FakeOpenAIServer,
) -> None:
    fake_llm.enqueue(FakeReply(body=["not", "an", "object"]))  # type: ignore[arg-type]
    with pytest.raises(APIResponseValidationError):
        await _complete(_client(fake_llm, retries=0))
