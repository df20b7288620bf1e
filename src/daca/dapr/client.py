"""The services' async client for the Dapr sidecar HTTP API.

The client builds each request and reads each answer; a ``Transport`` (``daca.dapr.transport``)
carries it: aiohttp in production, any ``httpx`` transport when one is given (the test seam:
``httpx.MockTransport``, ``httpx.ASGITransport``). Every transport failure becomes
``SidecarUnavailableError`` and every non-2xx answer a ``DaprAPIError`` subclass (see
``daca.dapr.errors``). The client never retries a request the sidecar answered: callers decide
what a failure means.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

import httpx
from opentelemetry import propagate, trace
from pydantic_core import to_json

from daca.dapr.errors import (
    DaprAPIError,
    ETagMismatchError,
    InvocationError,
    SidecarUnavailableError,
    StateTransactionError,
)
from daca.dapr.models import StateEntry, StateOperation, StateWrite
from daca.dapr.settings import DaprSettings
from daca.dapr.transport import AiohttpTransport, HttpxTransport, SidecarResponse, Transport
from daca.telemetry import tracing

_JSON = "application/json"


def _segment(value: str, safe: str = "") -> str:
    """``value`` percent-encoded for use as one URL path segment."""
    return quote(value, safe=safe + ":@")


def _dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, pydantic models in it dumped in JSON mode (in one pass by
    pydantic-core: a transaction body of a few pages costs a tenth of ``json.dumps``)."""
    return to_json(value)


def _error_fields(response: SidecarResponse) -> tuple[str | None, str]:
    """The ``errorCode`` and ``message`` of an error answer (plain-text bodies tolerated)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text
    if not isinstance(body, dict):
        return None, response.text
    return body.get("errorCode"), str(body.get("message", response.text))


def api_error(response: SidecarResponse) -> DaprAPIError:
    """The typed error for a non-2xx sidecar answer."""
    code, message = _error_fields(response)
    cls: type[DaprAPIError] = DaprAPIError
    if response.status_code == 409:
        cls = ETagMismatchError
    elif code == "ERR_STATE_TRANSACTION":
        cls = StateTransactionError
    elif code == "ERR_DIRECT_INVOKE":
        cls = InvocationError
    return cls(response.status_code, code, message)


def _check(response: SidecarResponse) -> SidecarResponse:
    """``response`` if it is 2xx, else raise its typed error."""
    if response.is_success:
        return response
    raise api_error(response)


class DaprClient:
    """Typed access to the sidecar: state with ETags, publish, invoke and health."""

    def __init__(
        self,
        base_url: str,
        *,
        api_token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._headers = {"dapr-api-token": api_token} if api_token else {}
        self._transport: Transport = (
            AiohttpTransport(base_url, timeout=timeout)
            if transport is None
            else HttpxTransport(transport, base_url, timeout=timeout)
        )

    @classmethod
    def from_settings(
        cls,
        settings: DaprSettings,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> DaprClient:
        """A client for the sidecar that ``settings`` describe."""
        return cls(
            settings.base_url,
            api_token=settings.dapr_api_token,
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP connection pool."""
        await self._transport.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = _JSON,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SidecarResponse:
        """Send one request; transport failures become ``SidecarUnavailableError``.

        With tracing on, the request is a client span whose ``traceparent`` travels along
        (its URL recorded without the query, which can hold a user's words)."""
        sent = {**self._headers, **(headers or {})}
        if body is not None:
            sent.setdefault("content-type", content_type)
        target = f"{path}?{urlencode(params)}" if params else path
        if not tracing.enabled():
            return await self._transport.send(method, target, sent, body)
        span = tracing.tracer(__name__).start_as_current_span(
            method,
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.path": path},
        )
        with span as current:
            propagate.inject(sent)
            response = await self._transport.send(method, target, sent, body)
            current.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                current.set_status(trace.StatusCode.ERROR)
            return response

    async def get_state(self, store: str, key: str) -> StateEntry | None:
        """The value and ETag stored under ``key``, or ``None`` when the key is missing."""
        url = f"/v1.0/state/{_segment(store)}/{_segment(key)}"
        response = _check(await self._send("GET", url))
        if response.status_code == 204 or not response.content:
            return None
        return StateEntry(key=key, value=response.json(), etag=response.headers.get("etag"))

    async def bulk_get_state(self, store: str, keys: Sequence[str]) -> list[StateEntry | None]:
        """The entries for ``keys``, in order; ``None`` for each missing key."""
        url = f"/v1.0/state/{_segment(store)}/bulk"
        response = _check(await self._send("POST", url, body=_dumps({"keys": list(keys)})))
        found = {item["key"]: item for item in response.json()}
        return [_bulk_entry(found.get(key)) for key in keys]

    async def save_state(self, store: str, items: Sequence[StateWrite]) -> None:
        """Save ``items``; raises ``ETagMismatchError`` when an ETag does not match."""
        body = _dumps([item.to_wire() for item in items])
        _check(await self._send("POST", f"/v1.0/state/{_segment(store)}", body=body))

    async def delete_state(self, store: str, key: str, *, etag: str | None = None) -> None:
        """Delete ``key`` (guarded by ``etag`` when given)."""
        headers = {"If-Match": etag} if etag is not None else {}
        url = f"/v1.0/state/{_segment(store)}/{_segment(key)}"
        _check(await self._send("DELETE", url, headers=headers))

    async def transact_state(self, store: str, operations: Sequence[StateOperation]) -> None:
        """Run ``operations`` as one state transaction (not atomic on Redis-backed daprd)."""
        body = _dumps({"operations": [operation.to_wire() for operation in operations]})
        url = f"/v1.0/state/{_segment(store)}/transaction"
        _check(await self._send("POST", url, body=body))

    async def publish(
        self,
        pubsub: str,
        topic: str,
        data: Any,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Publish ``data`` as JSON; ``metadata`` travels as ``metadata.<k>`` query parameters."""
        url = f"/v1.0/publish/{_segment(pubsub)}/{_segment(topic, safe='/')}"
        params = {f"metadata.{key}": value for key, value in (metadata or {}).items()}
        _check(await self._send("POST", url, body=_dumps(data), params=params))

    async def publish_cloudevent(self, pubsub: str, topic: str, event: Mapping[str, Any]) -> None:
        """Publish ``event`` as a CloudEvent of its own (``application/cloudevents+json``): the
        sidecar keeps its ``id`` and sets only ``topic`` and ``pubsubname``."""
        url = f"/v1.0/publish/{_segment(pubsub)}/{_segment(topic, safe='/')}"
        content_type = "application/cloudevents+json"
        _check(await self._send("POST", url, body=_dumps(event), content_type=content_type))

    async def invoke(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "GET",
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SidecarResponse:
        """Call ``method`` on ``app_id`` and return the target's answer, whatever its status.

        Raises ``InvocationError`` only when the sidecar could not reach the target
        (500 ``ERR_DIRECT_INVOKE``).
        """
        url = f"/v1.0/invoke/{_segment(app_id)}/method/{_segment(method.lstrip('/'), safe='/')}"
        body = None if json is None else _dumps(json)
        response = await self._send(http_method, url, body=body, params=params, headers=headers)
        if response.status_code == 500 and _error_fields(response)[0] == "ERR_DIRECT_INVOKE":
            raise api_error(response)
        return response

    async def is_ready(self) -> bool:
        """Whether the sidecar's outbound side (components) is ready."""
        try:
            response = await self._send("GET", "/v1.0/healthz/outbound")
        except SidecarUnavailableError:
            return False
        return response.is_success

    async def wait_until_ready(self, timeout: float, *, interval: float = 0.1) -> None:  # noqa: ASYNC109
        """Poll ``/v1.0/healthz/outbound`` until it answers 2xx, for at most ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self.is_ready():
            if loop.time() >= deadline:
                raise SidecarUnavailableError(f"Dapr sidecar not ready after {timeout} s")
            await asyncio.sleep(interval)


def _bulk_entry(item: dict[str, Any] | None) -> StateEntry | None:
    """One bulk-get element as an entry (``None`` when the key is missing)."""
    if item is None or "data" not in item:
        if item is not None and item.get("error"):
            raise DaprAPIError(500, "ERR_STATE_BULK_GET", str(item["error"]))
        return None
    return StateEntry(key=item["key"], value=item["data"], etag=item.get("etag"))
