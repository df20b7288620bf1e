"""The OpenAI client of the chat-completions models: ``openai.AsyncOpenAI``, leaner per call.

Two costs of the openai SDK are skipped, each measured as a share of the chat's turn:

* ``chat.completions.create`` passes its parameters through the SDK's request transform, which
  walks every message and tool against the typed-dict unions of ``CompletionCreateParams`` to
  apply key aliases and value formats. The chat-completions parameters declare none, so for the
  plain JSON the Agents SDK builds the walk returns what it was given, at about 1 ms of CPU per
  call. ``messages`` and ``tools`` go in ``extra_body``, which the SDK sends as given.
* A call that does not stream then goes through the SDK's request pipeline (options copies,
  request building, its httpx client over aiohttp with ``trust_env``, which reads the proxy
  variables and ``~/.netrc`` on every request, response processing and a non-validating model
  construction): about 0.7 ms of CPU of an agent run's 2.3 (``bench/request_costs.py``).
  ``_Lean`` posts the same JSON body with the same headers over one aiohttp session of its own
  (the environment's proxy looked up once) and reads the answer as ``ChatCompletion``; it keeps
  the SDK's behaviour where a caller can see it: the client's ``max_retries`` for what the SDK
  retries (connection errors, timeouts, 408, 409, 429 and 5xx, ``x-should-retry`` and
  ``retry-after`` obeyed; the waits after the first retry's are stamina's, and a call that
  succeeds at once never enters stamina, whose machinery cost 0.3 ms a call), the client's
  timeout per attempt, and the SDK's own exceptions (``APIStatusError`` by status, built by the
  SDK's own mapping; ``APIConnectionError``, ``APITimeoutError``, and
  ``APIResponseValidationError`` for a success whose body is not a JSON object).

Streaming calls, calls with ``extra_query`` and clients without an API key stay entirely the
openai SDK's.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import httpx2
import stamina
from openai import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncOpenAI,
    NotGiven,
    Omit,
)
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion
from pydantic import ValidationError
from pydantic_core import to_json

#: The parameters sent as given: lists of plain JSON values when the Agents SDK builds them.
_AS_GIVEN = ("messages", "tools")
#: ``create``'s parameters that are not part of the request body.
_NOT_BODY = ("extra_headers", "extra_query", "extra_body", "timeout")
#: The statuses the openai SDK retries (``_should_retry``).
_RETRIED = frozenset({408, 409, 429})
#: The wait before the first retry (the SDK's), doubling with each retry after it.
_FIRST_WAIT = 0.5
#: The longest ``retry-after`` obeyed; a longer one is replaced by the backoff (as the SDK).
_MAX_RETRY_AFTER = 60.0


def _given(value: Any) -> bool:
    return not isinstance(value, NotGiven | Omit)


class _Retry(Exception):
    """An attempt worth repeating, with what to raise if it was the last."""

    def __init__(self, error: Exception, wait: float | None = None) -> None:
        self.error, self.wait = error, wait


def _backoff(exc: Exception) -> bool | float | timedelta:
    """stamina's hook: retry a ``_Retry``, after its ``retry-after`` when it has one."""
    if not isinstance(exc, _Retry):
        return False
    return True if exc.wait is None else timedelta(seconds=exc.wait)


def _retry_after(headers: httpx2.Headers) -> float | None:
    """The wait a response asks for (``retry-after-ms``, ``retry-after`` in seconds or as an
    HTTP date), if any and no longer than ``_MAX_RETRY_AFTER``."""
    wait: float | None = None
    try:
        if "retry-after-ms" in headers:
            wait = float(headers["retry-after-ms"]) / 1000
        elif "retry-after" in headers:
            raw = headers["retry-after"]
            try:
                wait = float(raw)
            except ValueError:
                wait = parsedate_to_datetime(raw).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
    return wait if wait is not None and 0 <= wait <= _MAX_RETRY_AFTER else None


class _Lean:
    """Non-streaming chat completions over one aiohttp session (opened on first use)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def complete(
        self, client: AsyncOpenAI, body: dict[str, Any], headers: dict[str, str]
    ) -> ChatCompletion:
        """POST ``body`` to ``client``'s chat completions, retried as the SDK retries."""
        url = str(client.base_url).rstrip("/") + "/chat/completions"
        payload = to_json(body)
        limit = _time_limit(client.timeout)
        try:
            return await self._attempt(client, url, payload, headers, limit)
        except _Retry as first:
            if not client.max_retries:
                raise first.error from None
            failed = first
        await asyncio.sleep(failed.wait if failed.wait is not None else _FIRST_WAIT)
        try:
            async for attempt in stamina.retry_context(
                on=_backoff, attempts=client.max_retries, timeout=None,
                wait_initial=2 * _FIRST_WAIT, wait_max=8.0, wait_jitter=0.25,
            ):  # fmt: skip
                with attempt:
                    return await self._attempt(client, url, payload, headers, limit)
        except _Retry as last:
            raise last.error from None
        raise AssertionError("unreachable: stamina made no attempt")

    async def _attempt(
        self,
        client: AsyncOpenAI,
        url: str,
        payload: bytes,
        headers: dict[str, str],
        limit: aiohttp.ClientTimeout,
    ) -> ChatCompletion:
        try:
            async with self._opened(url).post(
                url, data=payload, headers=headers, timeout=limit
            ) as answer:
                status, content = answer.status, await answer.read()
                raw_headers = list(answer.headers.items())
        except TimeoutError as exc:
            raise _Retry(APITimeoutError(request=httpx2.Request("POST", url))) from exc
        except aiohttp.ClientError as exc:
            raise _Retry(APIConnectionError(request=httpx2.Request("POST", url))) from exc
        success = 200 <= status < 300
        completion = _completion(content) if success else None
        if completion is not None:
            return completion
        response = httpx2.Response(
            status, headers=raw_headers, content=content, request=httpx2.Request("POST", url)
        )
        if success:
            raise APIResponseValidationError(response, content.decode(errors="replace"))
        # The SDK's own mapping of a status to its exception class and message.
        error = client._make_status_error_from_response(response)
        if _retried(status, response.headers):
            raise _Retry(error, _retry_after(response.headers))
        raise error

    def _opened(self, url: str) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(proxy=_env_proxy(url))
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _time_limit(timeout: object) -> aiohttp.ClientTimeout:
    """The client's timeout as aiohttp's: seconds for the whole attempt, or an httpx
    ``Timeout``'s connect and read limits (the openai SDK's default: 600 s, 5 s to connect)."""
    if isinstance(timeout, int | float):
        return aiohttp.ClientTimeout(total=timeout)
    if isinstance(timeout, httpx2.Timeout):
        return aiohttp.ClientTimeout(
            total=None, sock_connect=timeout.connect, sock_read=timeout.read
        )
    return aiohttp.ClientTimeout(total=None)


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY`` ...), as
    the openai SDK's client would use it. Looked up once: aiohttp's ``trust_env`` looks it up,
    and reads ``~/.netrc``, on every request, about 0.5 ms of CPU each."""
    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _retried(status: int, headers: httpx2.Headers) -> bool:
    """Whether the openai SDK retries an answer with ``status`` and ``headers``."""
    should = headers.get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    return status in _RETRIED or status >= 500


def _completion(content: bytes) -> ChatCompletion | None:
    """The answer as ``ChatCompletion``: validated, or, where an OpenAI-compatible server
    leaves out or reshapes a field, built without validation as the openai SDK builds it;
    ``None`` for an answer that is not a JSON object."""
    try:
        return ChatCompletion.model_validate_json(content)
    except ValidationError:
        try:
            data = json.loads(content)
        except ValueError:
            return None
        return ChatCompletion.construct(**data) if isinstance(data, dict) else None


class _Completions(AsyncCompletions):
    async def create(self, **params: Any) -> Any:
        """``AsyncCompletions.create`` with ``messages`` and ``tools`` sent as given, and a
        call that does not stream sent by ``_Lean``."""
        body = dict(params.pop("extra_body", None) or {})
        for name in _AS_GIVEN:
            value = params.get(name)
            if isinstance(value, list) and name not in body:
                body[name] = value
                if name == "messages":
                    params[name] = []  # still required by ``create``; ``extra_body`` wins
                else:
                    del params[name]
        client = cast(ChatClient, self._client)  # ``_Chat`` serves ChatClient only
        streams = params.get("stream") is True
        if streams or params.get("extra_query") or not client.api_key:
            return await super().create(**params, extra_body=body)
        sent = {k: v for k, v in params.items() if k not in _NOT_BODY and _given(v)}
        headers = {**client.default_headers, **(params.get("extra_headers") or {})}
        headers = {k: v for k, v in headers.items() if _given(v)}
        headers["Authorization"] = f"Bearer {client.api_key}"
        return await client._lean.complete(client, {**sent, **body}, headers)


class _Chat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self._client)


class ChatClient(AsyncOpenAI):
    """``AsyncOpenAI`` whose ``chat.completions.create`` sends messages and tools as given, and
    a call that does not stream without the SDK's request pipeline. Its copies
    (``with_options``) share its connections; closing it closes them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lean = _Lean()

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)

    def copy(self, *args: Any, **kwargs: Any) -> ChatClient:
        clone = super().copy(*args, **kwargs)
        clone._lean = self._lean
        return clone

    with_options = copy

    async def close(self) -> None:
        await self._lean.aclose()
        await super().close()
