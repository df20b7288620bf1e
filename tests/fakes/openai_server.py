"""A small fake OpenAI-compatible server for tests: ``POST /v1/chat/completions``.

It runs a Starlette app under uvicorn on a free loopback port in a background thread, so the
real ``openai`` client (its HTTP stack, retries and timeouts) and the Agents SDK's
``OpenAIChatCompletionsModel`` are exercised over HTTP. Replies are scripted in order; when
the script is empty the default reply is used. Every request is recorded.

    with FakeOpenAIServer() as llm:
        llm.enqueue(tool_call_reply("get_current_time"), answer_with_tool_output)
        settings = LLMSettings(_env_file=None, llm_base_url=llm.base_url, llm_model="fake")
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

_STARTUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class FakeReply:
    """One scripted answer: a status and JSON body, or a hang until the server stops.

    A request with ``"stream": true`` gets the same answer as ``chat.completion.chunk`` events
    (the text word by word); ``stall_after`` chunks, the stream then waits for
    ``release_stalls`` (or the server's stop) before sending the rest (a model that stalls).
    """

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    stall_after: int | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system_prompt(self) -> str:
        """The text of the system message (the agent's instructions), or ''."""
        return next((m["content"] for m in self.messages if m.get("role") == "system"), "")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages of the request."""
        return list(self.body.get("messages", []))

    def tool_outputs(self) -> list[str]:
        """The contents of the ``tool`` messages (function results sent back to the model)."""
        return [str(m.get("content", "")) for m in self.messages if m.get("role") == "tool"]


Responder = Callable[[RecordedRequest], FakeReply]
Step = FakeReply | Responder


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    """A ``chat.completion`` body with one choice."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def text_reply(text: str) -> FakeReply:
    """The model answers with ``text``."""
    return FakeReply(body=_completion({"role": "assistant", "content": text}, "stop"))


def tool_call_reply(name: str, arguments: str = "{}", call_id: str = "call_fake_1") -> FakeReply:
    """The model asks for the tool ``name`` to be called."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return FakeReply(body=_completion(message, "tool_calls"))


def error_reply(status: int, message: str = "scripted failure") -> FakeReply:
    """An OpenAI-style error; ``retry-after-ms`` keeps the client's retries fast."""
    body = {"error": {"message": message, "type": "server_error", "code": None}}
    return FakeReply(status=status, body=body, headers={"retry-after-ms": "1"})


def _stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``chat.completion`` body as the chunks a streaming server sends."""
    choice = body["choices"][0]
    message, finish = choice["message"], choice["finish_reason"]

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choices = [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        return {"id": body["id"], "object": "chat.completion.chunk", "created": 0,
                "model": body["model"], "choices": choices}  # fmt: skip

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [
        chunk({"content": piece}) for piece in re.findall(r"\s*\S+", message.get("content") or "")
    ]
    for index, call in enumerate(message.get("tool_calls") or []):
        chunks.append(chunk({"tool_calls": [{"index": index, **call}]}))
    chunks.append(chunk({}, finish))
    chunks.append({**chunk({}), "choices": [], "usage": body["usage"]})
    return chunks


HANG = FakeReply(hang=True)
"""Never answers (until the server stops): exercises client and caller timeouts."""


def _free_socket() -> socket.socket:
    """A listening TCP socket on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


class FakeOpenAIServer:
    """A scripted OpenAI-compatible chat-completions server on a loopback port."""

    def __init__(self, default: FakeReply | None = None) -> None:
        self.default = default or text_reply("This is the fake LLM.")
        self.requests: list[RecordedRequest] = []
        self._script: deque[Step] = deque()
        self._released = threading.Event()
        self._unstalled = threading.Event()
        self._socket = _free_socket()
        self._server = uvicorn.Server(uvicorn.Config(self._app(), log_level="warning"))
        self._thread = threading.Thread(target=self._serve, name="fake-openai", daemon=True)
        #: ``/v1/embeddings``: words mapped to a shared concept embed alike (see ``embedding``).
        self.concepts: dict[str, str] = {}
        self.embedding_inputs: list[list[str]] = []
        #: How many of the next embeddings requests fail with a 500.
        self.embedding_failures = 0

    @property
    def port(self) -> int:
        """The loopback port the server listens on."""
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *steps: Step) -> None:
        """Script the next replies, in order (a step may compute its reply from the request)."""
        self._script.extend(steps)

    def _app(self) -> Starlette:
        """The Starlette app: chat completions and embeddings."""
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )

    def embedding(self, text: str) -> list[float]:
        """A deterministic 64-dimension bag of concepts: each word counts in the dimension of
        its concept (``concepts``, else itself), so texts sharing a concept are similar."""
        vector = [0.0] * 64
        for word in re.findall(r"[a-z]+", text.lower()):
            concept = self.concepts.get(word, word)
            vector[zlib.crc32(concept.encode()) % 64] += 1.0
        return vector

    async def _embeddings(self, request: Request) -> JSONResponse:
        """An OpenAI-style embeddings answer for the request's ``input``."""
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.embedding_inputs.append(inputs)
        if self.embedding_failures > 0:
            self.embedding_failures -= 1
            return JSONResponse({"error": {"message": "scripted failure"}}, status_code=500)
        data = [{"object": "embedding", "index": i, "embedding": self.embedding(text)}
                for i, text in enumerate(inputs)]  # fmt: skip
        return JSONResponse({"object": "list", "data": data, "model": body["model"]})

    async def _chat(self, request: Request) -> JSONResponse:
        """Record the request and play the next scripted step."""
        recorded = RecordedRequest(request.url.path, dict(request.headers), await request.json())
        self.requests.append(recorded)
        step = self._script.popleft() if self._script else self.default
        reply = step if isinstance(step, FakeReply) else step(recorded)
        if reply.hang:
            await asyncio.to_thread(self._released.wait)
            return JSONResponse({"error": {"message": "server stopping"}}, status_code=503)
        if recorded.body.get("stream") and reply.status == 200:
            return StreamingResponse(self._chunks(reply), media_type="text/event-stream")
        return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

    async def _chunks(self, reply: FakeReply) -> AsyncIterator[bytes]:
        """The reply as the SSE stream of ``chat.completion.chunk`` objects, then ``[DONE]``."""
        for number, chunk in enumerate(_stream_chunks(reply.body)):
            if reply.stall_after is not None and number == reply.stall_after:
                await asyncio.to_thread(self._unstalled.wait)
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            await asyncio.sleep(0)
        yield b"data: [DONE]\n\n"

    def _serve(self) -> None:
        """The server thread's body."""
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        """Start serving and wait until uvicorn reports it has started."""
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server failed to start")
            self._released.wait(0.01)

    def release_stalls(self) -> None:
        """Let stalled streams send the rest of their chunks."""
        self._unstalled.set()

    def stop(self) -> None:
        """Release hanging requests and stop the server."""
        self._released.set()
        self._unstalled.set()
        self._server.should_exit = True
        self._thread.join(_STARTUP_TIMEOUT)
        self._socket.close()

    def __enter__(self) -> FakeOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
