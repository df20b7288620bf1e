"""The services' async client for the Dapr sidecar HTTP API.

One ``httpx.AsyncClient`` per ``DaprClient``; the transport is a constructor argument, which is
also the test seam (``httpx.MockTransport``). Every transport failure becomes
``SidecarUnavailableError`` and every non-2xx answer a ``DaprAPIError`` subclass (see
``daca.dapr.errors``). The client never retries: callers decide what a failure means.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from daca.dapr.errors import (
    DaprAPIError,
    ETagMismatchError,
    InvocationError,
    SidecarUnavailableError,
    StateTransactionError,
)
from daca.dapr.models import StateEntry, StateOperation, StateWrite, jsonable
from daca.dapr.settings import DaprSettings
from daca.telemetry import tracing

logger = logging.getLogger(__name__)

_JSON_HEADERS = {"content-type": "application/json"}


def _segment(value: str, safe: str = "") -> str:
    """``value`` percent-encoded for use as one URL path segment."""
    return quote(value, safe=safe + ":@")


def _error_fields(response: httpx.Response) -> tuple[str | None, str]:
    """The ``errorCode`` and ``message`` of an error answer (plain-text bodies tolerated)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text
    if not isinstance(body, dict):
        return None, response.text
    return body.get("errorCode"), str(body.get("message", response.text))


def api_error(response: httpx.Response) -> DaprAPIError:
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


def _check(response: httpx.Response) -> httpx.Response:
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
        headers = {"dapr-api-token": api_token} if api_token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        tracing.instrument_client(self._http)

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
        await self._http.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request; transport failures become ``SidecarUnavailableError``."""
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            logger.warning("Dapr sidecar unavailable: %s %s (%s)", method, url, type(exc).__name__)
            raise SidecarUnavailableError(f"Dapr sidecar unavailable: {exc!r}") from exc

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
        response = _check(await self._send("POST", url, json={"keys": list(keys)}))
        found = {item["key"]: item for item in response.json()}
        return [_bulk_entry(found.get(key)) for key in keys]

    async def save_state(self, store: str, items: Sequence[StateWrite]) -> None:
        """Save ``items``; raises ``ETagMismatchError`` when an ETag does not match."""
        body = [item.to_wire() for item in items]
        _check(await self._send("POST", f"/v1.0/state/{_segment(store)}", json=body))

    async def delete_state(self, store: str, key: str, *, etag: str | None = None) -> None:
        """Delete ``key`` (guarded by ``etag`` when given)."""
        headers = {"If-Match": etag} if etag is not None else {}
        url = f"/v1.0/state/{_segment(store)}/{_segment(key)}"
        _check(await self._send("DELETE", url, headers=headers))

    async def transact_state(self, store: str, operations: Sequence[StateOperation]) -> None:
        """Run ``operations`` as one state transaction (not atomic on Redis-backed daprd)."""
        body = {"operations": [operation.to_wire() for operation in operations]}
        url = f"/v1.0/state/{_segment(store)}/transaction"
        _check(await self._send("POST", url, json=body))

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
        content = jsonlib.dumps(jsonable(data))
        _check(await self._send("POST", url, content=content, headers=_JSON_HEADERS, params=params))

    async def publish_cloudevent(self, pubsub: str, topic: str, event: Mapping[str, Any]) -> None:
        """Publish ``event`` as a CloudEvent of its own (``application/cloudevents+json``): the
        sidecar keeps its ``id`` and sets only ``topic`` and ``pubsubname``."""
        url = f"/v1.0/publish/{_segment(pubsub)}/{_segment(topic, safe='/')}"
        headers = {"content-type": "application/cloudevents+json"}
        _check(await self._send("POST", url, content=jsonlib.dumps(event), headers=headers))

    async def invoke(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "GET",
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Call ``method`` on ``app_id`` and return the target's answer, whatever its status.

        Raises ``InvocationError`` only when the sidecar could not reach the target
        (500 ``ERR_DIRECT_INVOKE``).
        """
        url = f"/v1.0/invoke/{_segment(app_id)}/method/{_segment(method.lstrip('/'), safe='/')}"
        body = None if json is None else jsonable(json)
        response = await self._send(http_method, url, json=body, params=params, headers=headers)
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
