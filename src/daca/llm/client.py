"""The OpenAI client of the chat-completions models: ``openai.AsyncOpenAI``, minus one walk.

``chat.completions.create`` passes its parameters through the openai SDK's request transform,
which walks every message and tool against the typed-dict unions of ``CompletionCreateParams``
to apply key aliases and value formats. The chat-completions parameters declare none, so for
the plain JSON the Agents SDK builds (its converter's dicts, made dump-compatible) the walk
returns what it was given, at about 1 ms of CPU per call for a system prompt and one message,
more with history and tools: a tenth of the chat's whole turn (``bench/load_bench.py``). The
client here hands ``messages`` and ``tools`` to ``create`` in ``extra_body``, which the SDK
sends as given, so the request on the wire is the same JSON without the walk. Everything else
(retries, timeouts, errors, streaming, responses) is the openai SDK's own.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from openai import AsyncOpenAI
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions

#: The parameters sent as given: lists of plain JSON values when the Agents SDK builds them.
_AS_GIVEN = ("messages", "tools")


class _Completions(AsyncCompletions):
    async def create(self, **params: Any) -> Any:
        """``AsyncCompletions.create`` with ``messages`` and ``tools`` sent as given."""
        body = dict(params.pop("extra_body", None) or {})
        for name in _AS_GIVEN:
            value = params.get(name)
            if isinstance(value, list) and name not in body:
                body[name] = value
                if name == "messages":
                    params[name] = []  # still required by ``create``; ``extra_body`` wins
                else:
                    del params[name]
        return await super().create(**params, extra_body=body)


class _Chat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self._client)


class ChatClient(AsyncOpenAI):
    """``AsyncOpenAI`` whose ``chat.completions.create`` sends messages and tools as given."""

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)
