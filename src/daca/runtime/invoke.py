"""Service invocation: a request to ``/v1.0/invoke/{app-id}/method/{path}`` reaches that app.

The caller's sidecar resolves the app-id in the local name registry and forwards the request to
the callee's sidecar (``/_daca/v1/invoke/{path}``, authenticated with the callee's peer token),
which calls its own app, adding ``dapr-api-token`` when ``APP_API_TOKEN`` is set, as daprd's
sidecar-to-sidecar hop does. Invoking one's own app-id calls the app directly.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

import aiohttp
from multidict import CIMultiDict
from starlette.requests import Request
from starlette.responses import Response
from yarl import URL

from daca.runtime.cloudevents import new_traceparent
from daca.runtime.delivery import AppChannel
from daca.runtime.errors import DaprError
from daca.runtime.nameregistry import NameRegistry

logger = logging.getLogger(__name__)

PEER_PATH = "/_daca/v1/invoke/"
PEER_TOKEN_HEADER = "dapr-peer-token"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "dapr-api-token",
        "dapr-app-id",
        PEER_TOKEN_HEADER,
    }
)


def _forwardable(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]


def _invoke_error(app_id: str, cause: str) -> DaprError:
    return DaprError(500, "ERR_DIRECT_INVOKE", f"failed to invoke, id: {app_id}, err: {cause}")


class Invoker:
    """Forwards invocations for one sidecar."""

    def __init__(
        self,
        app_id: str,
        registry: NameRegistry,
        session: aiohttp.ClientSession,
        channel: AppChannel | None,
        peer_token: str,
    ) -> None:
        self.app_id = app_id
        self._registry = registry
        self._session = session
        self._channel = channel
        self.peer_token = peer_token

    async def invoke(self, target: str, method: str, request: Request) -> Response:
        """Forward ``request`` to ``method`` of app ``target``; its answer passes through."""
        headers = self._outbound_headers(request, target)
        if target == self.app_id:
            return await self._call_app(method, request, headers)
        record = self._registry.lookup(target)
        if record is None:
            raise _invoke_error(target, f"couldn't find service: {target}")
        headers.append((PEER_TOKEN_HEADER, record.peer_token))
        url = f"http://{record.host}:{record.http_port}{PEER_PATH}{method}"
        return await self._forward(target, url, request, headers)

    async def serve_peer(self, request: Request) -> Response:
        """The callee side: a peer sidecar forwards an invocation of this app."""
        offered = request.headers.get(PEER_TOKEN_HEADER, "")
        if not hmac.compare_digest(offered.encode(), self.peer_token.encode()):
            return Response("invalid peer token", status_code=401, media_type="text/plain")
        headers = _forwardable(request.headers.items())
        return await self._call_app(request.path_params["method"], request, headers)

    def _outbound_headers(self, request: Request, target: str) -> list[tuple[str, str]]:
        headers = _forwardable(request.headers.items())
        client = request.client.host if request.client else ""
        host = request.headers.get("host", "")
        headers = [(k, v) for k, v in headers if k.lower() not in ("traceparent",)]
        headers += [
            ("dapr-caller-app-id", self.app_id),
            ("dapr-callee-app-id", target),
            ("traceparent", new_traceparent(request.headers.get("traceparent"))),
            ("x-forwarded-for", client),
            ("x-forwarded-host", host),
            ("forwarded", f"for={client};by={host}"),
        ]
        return headers

    async def _call_app(
        self, method: str, request: Request, headers: list[tuple[str, str]]
    ) -> Response:
        if self._channel is None:
            raise _invoke_error(self.app_id, "the app has no port configured (--app-port)")
        if self._channel.api_token:
            headers = [*headers, ("dapr-api-token", self._channel.api_token)]
        url = f"{self._channel.base_url}/{method}"
        return await self._forward(self.app_id, url, request, headers)

    async def _forward(
        self, target: str, url: str, request: Request, headers: list[tuple[str, str]]
    ) -> Response:
        query = request.url.query
        target_url = URL(f"{url}?{query}" if query else url, encoded=True)
        try:
            async with self._session.request(
                request.method,
                target_url,
                data=await request.body(),
                headers=CIMultiDict(headers),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            ) as answer:
                status, content = answer.status, await answer.read()
                answer_headers = list(answer.headers.items())
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("invoking %s at %s failed: %r", target, url, exc)
            raise _invoke_error(target, repr(exc)) from exc
        response = Response(content, status)
        passed = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in _forwardable(answer_headers)
        ]
        length = [h for h in response.raw_headers if h[0] == b"content-length"]
        response.raw_headers = length + passed
        return response
