"""Service invocation: a request to ``/v1.0/invoke/{app-id}/method/{path}`` reaches that app.

The caller's sidecar resolves the app-id in the local name registry and forwards the request to
the callee's sidecar (``/_daca/v1/invoke/{path}``, authenticated with the callee's peer token),
which calls its own app, adding ``dapr-api-token`` when ``APP_API_TOKEN`` is set, as daprd's
sidecar-to-sidecar hop does. Invoking one's own app-id calls the app directly. When the callee's
sidecar runs in this process (``daca up`` runs every sidecar in one), the hop between the two
sidecars is a call instead of an HTTP request: the callee's side does what it does for a
forwarded request (same headers, same errors), and the turn saves a loopback round trip.

The target and method are found as daprd finds them (:mod:`daca.runtime.invoketarget`). The
headers follow daprd (``dapr-http-api.md`` §4, :mod:`daca.runtime.headers`): the caller's headers
pass on, minus the hop-by-hop ones (and those its ``Connection`` header names); ``grpc-*`` ones
are renamed ``dapr-grpc-*``. A call to another app-id adds ``dapr-caller-app-id``,
``dapr-callee-app-id``, ``dapr-caller-namespace`` and ``X-Forwarded-For`` / ``X-Forwarded-Host`` /
``Forwarded`` naming the caller's host; a call to one's own app-id adds none of them.
``dapr-api-token`` is removed by the API-token middleware when the sidecar checks tokens, and
otherwise passes on, as in daprd. The request body is read up to the sidecar's size limit
before the call (``stream too large`` past it, in the words daprd's streaming call fails with).
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import Response
from yarl import URL

from daca.runtime.api.bodylimit import BodyTooLargeError, read_body
from daca.runtime.appchannel import AppChannel, request_body
from daca.runtime.errors import DirectInvokeFailed, DirectInvokeNoAppId
from daca.runtime.headers import (
    API_TOKEN_HEADER,
    CALLER_SET,
    PEER_TOKEN_HEADER,
    SERVER_SET,
    forwardable,
    forwarded_headers,
    host_address,
)
from daca.runtime.invoketarget import find_target_and_method, normalize_method
from daca.runtime.nameregistry import NameRegistry
from daca.runtime.spans import child_span

logger = logging.getLogger(__name__)

PEER_PATH = "/_daca/v1/invoke/"
#: The scope key under which the API app keeps the request path as it arrived (routing uses the
#: cleaned path, as daprd's router does; the invocation method is cut from the original).
ORIGINAL_PATH_KEY = "daca.original_path"

NO_APP_ID = "failed getting app id either from the URL path or the header dapr-app-id"

#: The invokers of the sidecars this process runs, by app-id (``Invoker.attach``).
_IN_PROCESS: dict[str, Invoker] = {}


def _invoke_error(app_id: str, cause: str) -> DirectInvokeFailed:
    return DirectInvokeFailed(f"failed to invoke, id: {app_id}, err: {cause}")


def _go_client_error(method: str, url: URL, exc: BaseException) -> str:
    """A failed call to the app as Go's HTTP client words it (``Get "<url>": <reason>``)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = f"dial tcp {exc.host}:{exc.port}: connect: "
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            reason += "connection refused"
        else:
            reason += (cause.strerror or str(cause)).lower() if cause else str(exc)
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        reason = "EOF"
    elif isinstance(exc, TimeoutError):
        reason = "context deadline exceeded"
    else:
        reason = str(exc) or type(exc).__name__
    return f'{method[:1].upper()}{method[1:].lower()} "{url}": {reason}'


class Invoker:
    """Forwards invocations for one sidecar."""

    def __init__(
        self,
        app_id: str,
        registry: NameRegistry,
        session: aiohttp.ClientSession,
        channel: AppChannel | None,
        peer_token: str,
        *,
        namespace: str | None = None,
    ) -> None:
        self.app_id = app_id
        self._registry = registry
        self._session = session
        self._channel = channel
        self.peer_token = peer_token
        self.namespace = namespace or os.environ.get("NAMESPACE") or "default"
        self._forwarded = forwarded_headers(host_address(), socket.gethostname())

    def attach(self) -> None:
        """Serve invocations from the other sidecars of this process without the HTTP hop."""
        _IN_PROCESS[self.app_id] = self

    def detach(self) -> None:
        if _IN_PROCESS.get(self.app_id) is self:
            del _IN_PROCESS[self.app_id]

    async def invoke_request(self, request: Request) -> Response:
        """An invocation as the HTTP API received it (either form)."""
        path = request.scope.get(ORIGINAL_PATH_KEY, request.scope["path"])
        target, method = find_target_and_method(path, request.headers)
        if not target:
            raise DirectInvokeNoAppId(NO_APP_ID)
        return await self.invoke(target, method, request)

    async def invoke(self, target: str, method: str, request: Request) -> Response:
        """Forward ``request`` to ``method`` of app ``target``; its answer passes through,
        within a span of its own when tracing is on (daprd's ``CallLocal/{app}/{method}``)."""
        try:
            method = normalize_method(method)
        except ValueError as exc:
            cause = f"rpc error: code = InvalidArgument desc = invalid method: {exc}"
            raise _invoke_error(target, cause) from None
        attributes = {"rpc.service": target, "rpc.method": method, "dapr.app_id": self.app_id}
        with child_span(
            f"CallLocal/{target}/{method}",
            request.headers.get("traceparent"),
            request.headers.get("tracestate"),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        ) as (span, trace_headers):
            response = await self._invoke(target, method, request, trace_headers)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _invoke(
        self, target: str, method: str, request: Request, trace_headers: dict[str, str]
    ) -> Response:
        traced = {"traceparent", "tracestate"} if "tracestate" in trace_headers else set()
        headers = [
            (f"dapr-{name.lower()}" if name.lower().startswith("grpc-") else name, value)
            for name, value in forwardable(request.headers.items(), CALLER_SET)
            if name.lower() not in traced
        ]
        headers += list(trace_headers.items())
        if target == self.app_id:
            return await self._call_app(method, request, headers, remote=False)
        record = self._registry.lookup(target)
        if record is None:
            raise _invoke_error(target, f"couldn't find service: {target}")
        headers += [
            ("dapr-caller-app-id", self.app_id),
            ("dapr-callee-app-id", target),
            ("dapr-caller-namespace", self.namespace),
            *self._forwarded,
            (PEER_TOKEN_HEADER, record.peer_token),
        ]
        local = _IN_PROCESS.get(target)
        if (
            local is not None
            and record.pid == os.getpid()
            and local.peer_token == record.peer_token
        ):
            return await self._invoke_in_process(local, target, method, request, headers)
        peer = f"http://{record.host}:{record.http_port}{PEER_PATH}"
        url = _with_query(peer + _escape(method), request)
        try:
            return await self._forward(url, request, headers)
        except BodyTooLargeError as exc:
            raise _invoke_error(target, str(exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("invoking %s through its sidecar at %s failed: %r", target, url, exc)
            cause = "connection error: " + _go_client_error(request.method, url, exc)
            raise _invoke_error(target, cause) from exc

    async def _invoke_in_process(
        self,
        callee: Invoker,
        target: str,
        method: str,
        request: Request,
        headers: list[tuple[str, str]],
    ) -> Response:
        """The hop to a sidecar of this process: the body read here, within this sidecar's
        limit, and the callee's side as ``serve_peer`` runs it (the headers as an HTTP hop would
        have delivered them)."""
        try:
            body = await read_body(request)
        except BodyTooLargeError as exc:
            raise _invoke_error(target, str(exc)) from None
        delivered = forwardable(headers, frozenset())
        return await callee._call_app(method, request, delivered, remote=True, body=body)

    async def serve_peer(self, request: Request) -> Response:
        """The callee side: a peer sidecar forwards an invocation of this app."""
        offered = request.headers.get(PEER_TOKEN_HEADER, "")
        if not hmac.compare_digest(offered.encode(), self.peer_token.encode()):
            return Response("invalid peer token", status_code=401, media_type="text/plain")
        headers = forwardable(request.headers.items(), frozenset())
        return await self._call_app(request.path_params["method"], request, headers, remote=True)

    async def _call_app(
        self,
        method: str,
        request: Request,
        headers: list[tuple[str, str]],
        *,
        remote: bool,
        body: bytes | None = None,
    ) -> Response:
        """Call this sidecar's app; ``remote`` when a peer sidecar forwarded the call (``body``
        when the caller already read it).

        Failures read as daprd words them: through the internal gRPC hop for a remote caller,
        straight from the app channel for one's own app-id.
        """
        remote_prefix = "rpc error: code = Internal desc = error invoking app channel: "
        if self._channel is None:
            cause = "cannot invoke local endpoint: app channel not initialized"
            raise _invoke_error(self.app_id, (remote_prefix if remote else "") + cause)
        if self._channel.api_token:  # replaces whatever the caller sent
            headers = [(k, v) for k, v in headers if k.lower() != API_TOKEN_HEADER]
            headers.append((API_TOKEN_HEADER, self._channel.api_token))
        url = _with_query(f"{self._channel.base_url}/{_escape(method)}", request)
        try:
            return await self._forward(url, request, headers, body)
        except (BodyTooLargeError, aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("invoking %s at %s failed: %r", self.app_id, url, exc)
            cause = _go_client_error(request.method, url, exc)
            raise _invoke_error(self.app_id, (remote_prefix if remote else "") + cause) from exc

    async def _forward(
        self, url: URL, request: Request, headers: list[tuple[str, str]], body: bytes | None = None
    ) -> Response:
        """Send ``request`` (its body read now unless given) to ``url``; the answer as is."""
        async with self._session.request(
            request.method,
            url,
            data=request_body(await read_body(request) if body is None else body),
            headers=CIMultiDict(headers),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        ) as answer:
            status, content = answer.status, await answer.read()
            answer_headers = list(answer.headers.items())
        response = Response(content, status)
        passed = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in forwardable(answer_headers, SERVER_SET)
        ]
        length = [h for h in response.raw_headers if h[0] == b"content-length"]
        response.raw_headers = length + passed
        return response


def _escape(method: str) -> str:
    """The (decoded) method as a URL path, escaped as Go's ``URL.EscapedPath`` does."""
    return quote(method, safe="/:@!$&'()*+,;=")


def _with_query(url: str, request: Request) -> URL:
    """``url`` with the request's query string, both as they are (already encoded)."""
    query = request.url.query
    return URL(f"{url}?{query}" if query else url, encoded=True)
