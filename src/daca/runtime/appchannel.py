"""How a sidecar reaches its app: the app's base URL, the HTTP session, ``APP_API_TOKEN``."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.payload import TOO_LARGE_BYTES_BODY


@dataclass(frozen=True, slots=True)
class AppChannel:
    """How the sidecar reaches its app."""

    base_url: str
    session: aiohttp.ClientSession
    api_token: str | None = None

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.api_token:
            headers["dapr-api-token"] = self.api_token
        return headers


def request_body(body: bytes) -> bytes | io.BytesIO:
    """``body`` as aiohttp sends it without blocking the event loop: bytes, or a stream for a
    body over 1 MiB (which aiohttp would write in one piece, with a ``ResourceWarning``)."""
    return io.BytesIO(body) if len(body) > TOO_LARGE_BYTES_BODY else body
