"""The last hop of the Dapr client: one request to the sidecar, one answer back.

``AiohttpTransport`` is the production transport. aiohttp's connection pool costs a fraction of
httpx's per request (measured in ``bench/load_bench.py``: the services spent most of their CPU
in httpcore's pool bookkeeping), the same reason the runtime's own outbound calls use it.
``HttpxTransport`` carries any ``httpx`` transport (``httpx.MockTransport``, ``ASGITransport``)
and is the tests' seam: everything above it, building the request and reading the answer, is
the same code whichever transport is underneath.

Every transport failure becomes ``SidecarUnavailableError``, chained to its cause.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
from pydantic_core import from_json

from daca.dapr.errors import SidecarUnavailableError

logger = logging.getLogger(__name__)

#: A kept-alive connection the sidecar closed as it was reused: nothing was answered, so the
#: request is sent once more on a new connection (as Go's HTTP client does; aiohttp itself
#: does so only for idempotent methods, and the state API's writes are POSTs).
_UNANSWERED = (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError)


@dataclass(frozen=True, slots=True)
class SidecarResponse:
    """A sidecar's (or, through invocation, a target app's) answer, read in full."""

    status_code: int
    headers: Mapping[str, str]  # names in lower case
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON. pydantic-core parses it in about half the time of ``json``, which
        is kept for what pydantic-core refuses and ``json`` takes (lone surrogate escapes)."""
        try:
            return from_json(self.content)
        except ValueError:
            return json.loads(self.content)


class Transport(Protocol):
    """Sends one request (``target`` is the path with its query) to the sidecar."""

    async def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> SidecarResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """Requests over one aiohttp session (created on first use, inside the running loop)."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> SidecarResponse:
        url = self._base_url + target
        try:
            try:
                return await _request(self._open(), method, url, headers, body)
            except _UNANSWERED as exc:
                logger.debug("%s %s: closed unanswered (%r); once more", method, target, exc)
            return await _request(self._open(), method, url, headers, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _unavailable(method, url, exc) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> SidecarResponse:
    async with session.request(method, url, headers=headers, data=body) as response:
        content = await response.read()
        found = {name.lower(): value for name, value in response.headers.items()}
        return SidecarResponse(response.status, found, content)


class HttpxTransport:
    """Requests through an ``httpx`` transport: the seam tests fake the sidecar with."""

    def __init__(self, transport: httpx.AsyncBaseTransport, base_url: str, *, timeout: float):
        self._client = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)

    async def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> SidecarResponse:
        try:
            response = await self._client.request(method, target, headers=headers, content=body)
        except httpx.TransportError as exc:
            raise _unavailable(method, target, exc) from exc
        return SidecarResponse(response.status_code, dict(response.headers), response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


def _unavailable(method: str, url: str, exc: BaseException) -> SidecarUnavailableError:
    path = url.split("?", 1)[0]  # a query can hold a user's words
    logger.warning("Dapr sidecar unavailable: %s %s (%s)", method, path, type(exc).__name__)
    return SidecarUnavailableError(f"Dapr sidecar unavailable: {exc!r}")
