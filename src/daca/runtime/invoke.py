"""Service invocation: a request to ``/v1.0/invoke/{app-id}/method/{path}`` reaches that app.

The caller's sidecar resolves the app-id in the local name registry and forwards the request to
the callee's sidecar (``/_daca/v1/invoke/{path}``, authenticated with the callee's peer token),
which calls its own app, adding ``dapr-api-token`` when ``APP_API_TOKEN`` is set, as daprd's
sidecar-to-sidecar hop does. Invoking one's own app-id calls the app directly.

The headers follow daprd (``dapr-http-api.md`` §4): the caller's headers pass on, minus the
hop-by-hop ones (and those its ``Connection`` header names); ``grpc-*`` ones are renamed
``dapr-grpc-*``. A call to another app-id adds ``dapr-caller-app-id``, ``dapr-callee-app-id``,
``dapr-caller-namespace`` and ``X-Forwarded-For`` / ``X-Forwarded-Host`` / ``Forwarded`` naming
the caller's host (its address and host name, as daprd's ``GetHostAddress`` finds them); a call
to one's own app-id adds none of them. ``dapr-api-token`` is removed by the API-token middleware
when the sidecar checks tokens, and otherwise passes on, as in daprd.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import quote

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
APP_ID_HEADER = "dapr-app-id"
API_TOKEN_HEADER = "dapr-api-token"
#: The scope key under which the API app keeps the request path as it arrived (routing uses the
#: cleaned path, as daprd's router does; the invocation method is cut from the original).
ORIGINAL_PATH_KEY = "daca.original_path"

#: Headers of one connection, never forwarded in either direction.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        PEER_TOKEN_HEADER,
    }
)
#: Set by the caller's sidecar itself; a value the caller sent is replaced (or, for
#: ``dapr-app-id``, consumed).
_CALLER_SET = frozenset(
    {
        APP_ID_HEADER,
        "traceparent",
        "dapr-caller-app-id",
        "dapr-callee-app-id",
        "dapr-caller-namespace",
    }
)
#: The sidecar's own HTTP server adds these to every answer; the app's would be duplicates.
_SERVER_SET = frozenset({"date", "server"})

NO_APP_ID = "failed getting app id either from the URL path or the header dapr-app-id"


def go_clean(path: str) -> str:
    """``path`` as Go's ``path.Clean`` returns it (daprd routes on, and invokes, clean paths)."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append(part)
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _after_prefix(path: str, *prefix: str) -> int:
    """Where ``path`` goes on after the segments ``prefix`` (empty segments skipped), or -1."""
    found, start = 0, 0
    for i, char in enumerate(path):
        if char != "/":
            if found >= len(prefix):
                return i
            continue
        if i > start:
            if path[start:i] != prefix[found]:
                return -1
            found += 1
        start = i + 1
    return len(path) if found >= len(prefix) else -1


def find_target_and_method(path: str, headers: Mapping[str, str]) -> tuple[str, str]:
    """The app-id and method of an invocation, looked for where daprd looks, in its order.

    The ``dapr-app-id`` header (the whole path is the method), HTTP Basic auth with the user
    ``dapr-app-id`` and the app-id as password, then ``/v1.0/invoke/{app-id}/method/{method}``.
    ``("", "")`` when none gives an app-id.
    """
    whole_path = go_clean(path).removeprefix("/")
    if app_id := headers.get(APP_ID_HEADER, ""):
        return app_id, whole_path
    auth = headers.get("authorization", "")
    if auth.startswith("Basic "):
        try:
            pair = base64.b64decode(auth.removeprefix("Basic "), validate=True).decode().split(":")
        except (binascii.Error, UnicodeDecodeError):
            pair = []
        if len(pair) == 2 and pair[0].lower() == APP_ID_HEADER:
            return pair[1], whole_path
    index = _after_prefix(path, "v1.0", "invoke")
    if index > 0:
        rest = path[index:]
        split = rest.find("/method/")
        if split > 0:
            method = go_clean(rest[split + len("/method/") :])
            return rest[:split], "" if method == "." else method
    return "", ""


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_GO_ESCAPES |= {"\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def _go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` prints it (for the common characters)."""
    quoted = (
        _GO_ESCAPES.get(char)
        or (f"\\x{ord(char):02x}" if ord(char) < 0x20 or char == "\x7f" else char)
        for char in text
    )
    return '"' + "".join(quoted) + '"'


def normalize_method(method: str) -> str:
    """The method as daprd's ``NormalizeMethod`` leaves it; ``ValueError`` when it refuses it.

    ``#``, ``?``, NUL and control characters are refused; ``..`` cannot climb above the root.
    """
    if any(char in method for char in "#?\x00"):
        raise ValueError(f"method contains forbidden character: {_go_quote(method)}")
    for position, byte in enumerate(method.encode()):
        if byte < 0x20 or byte == 0x7F:
            raise ValueError(
                f"method contains control character at position {position}: {_go_quote(method)}"
            )
    cleaned = go_clean(method)
    while cleaned.startswith("../"):
        cleaned = cleaned[3:]
    return "" if cleaned in ("..", ".") else cleaned


def _invoke_error(app_id: str, cause: str) -> DaprError:
    return DaprError(500, "ERR_DIRECT_INVOKE", f"failed to invoke, id: {app_id}, err: {cause}")


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


def _nominated(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The header names a ``Connection`` header lists: hop-by-hop too (RFC 7230 §6.1)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }


def _forwardable(headers: Iterable[tuple[str, str]], drop: frozenset[str]) -> list[tuple[str, str]]:
    items = list(headers)
    dropped = _HOP_BY_HOP | drop | _nominated(items)
    return [(name, value) for name, value in items if name.lower() not in dropped]


def host_address() -> str:
    """This host's address as daprd's ``GetHostAddress`` finds it; ``""`` when there is none.

    ``DAPR_HOST_IP``, else the source address the routing table picks for a documentation
    address (a UDP ``connect`` sends no packet), IPv4 first. daprd then falls back to listing the
    interfaces; without a route there is no address here.
    """
    configured = os.environ.get("DAPR_HOST_IP")
    if configured:
        return configured
    clat = ipaddress.ip_network("192.0.0.0/29")
    probes = ((socket.AF_INET, ("192.0.2.1", 80)), (socket.AF_INET6, ("2001:db8::1", 80)))
    for family, probe in probes:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect(probe)
                address = str(sock.getsockname()[0])
        except OSError:
            continue
        if ipaddress.ip_address(address) not in clat:
            return address
    return ""


def forwarded_headers(address: str, hostname: str) -> list[tuple[str, str]]:
    """daprd's ``X-Forwarded-For``, ``X-Forwarded-Host`` and ``Forwarded`` for this host."""
    headers: list[tuple[str, str]] = []
    forwarded: list[str] = []
    if address:
        headers.append(("x-forwarded-for", address))
        quoted = f'"[{address}]"' if ":" in address else address  # RFC 7239: IPv6 in quotes
        forwarded.append(f"for={quoted};by={quoted}")
    if hostname:
        headers.append(("x-forwarded-host", hostname))
        forwarded.append(f"host={hostname}")
    headers.append(("forwarded", ";".join(forwarded)))
    return headers


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

    async def invoke_request(self, request: Request) -> Response:
        """An invocation as the HTTP API received it (either form)."""
        path = request.scope.get(ORIGINAL_PATH_KEY, request.scope["path"])
        target, method = find_target_and_method(path, request.headers)
        if not target:
            raise DaprError(404, "ERR_DIRECT_INVOKE", NO_APP_ID)
        return await self.invoke(target, method, request)

    async def invoke(self, target: str, method: str, request: Request) -> Response:
        """Forward ``request`` to ``method`` of app ``target``; its answer passes through."""
        try:
            method = normalize_method(method)
        except ValueError as exc:
            cause = f"rpc error: code = InvalidArgument desc = invalid method: {exc}"
            raise _invoke_error(target, cause) from None
        headers = [
            (f"dapr-{name.lower()}" if name.lower().startswith("grpc-") else name, value)
            for name, value in _forwardable(request.headers.items(), _CALLER_SET)
        ]
        headers.append(("traceparent", new_traceparent(request.headers.get("traceparent"))))
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
        peer = f"http://{record.host}:{record.http_port}{PEER_PATH}"
        url = _with_query(peer + _escape(method), request)
        try:
            return await self._forward(url, request, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("invoking %s through its sidecar at %s failed: %r", target, url, exc)
            cause = "connection error: " + _go_client_error(request.method, url, exc)
            raise _invoke_error(target, cause) from exc

    async def serve_peer(self, request: Request) -> Response:
        """The callee side: a peer sidecar forwards an invocation of this app."""
        offered = request.headers.get(PEER_TOKEN_HEADER, "")
        if not hmac.compare_digest(offered.encode(), self.peer_token.encode()):
            return Response("invalid peer token", status_code=401, media_type="text/plain")
        headers = _forwardable(request.headers.items(), frozenset())
        return await self._call_app(request.path_params["method"], request, headers, remote=True)

    async def _call_app(
        self, method: str, request: Request, headers: list[tuple[str, str]], *, remote: bool
    ) -> Response:
        """Call this sidecar's app; ``remote`` when a peer sidecar forwarded the call.

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
            return await self._forward(url, request, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("invoking %s at %s failed: %r", self.app_id, url, exc)
            cause = _go_client_error(request.method, url, exc)
            raise _invoke_error(self.app_id, (remote_prefix if remote else "") + cause) from exc

    async def _forward(
        self, url: URL, request: Request, headers: list[tuple[str, str]]
    ) -> Response:
        async with self._session.request(
            request.method,
            url,
            data=await request.body(),
            headers=CIMultiDict(headers),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        ) as answer:
            status, content = answer.status, await answer.read()
            answer_headers = list(answer.headers.items())
        response = Response(content, status)
        passed = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in _forwardable(answer_headers, _SERVER_SET)
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
