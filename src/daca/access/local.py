"""Local mode's guard: only this machine, and never a cross-site browser request.

An ASGI middleware in front of a service in local mode. It refuses, with 403 and a one-line
reason, a request that

- comes from a client that is not this machine: a loopback address, or one of this host's own
  addresses (a sidecar's invocation arrives with ``X-Forwarded-For`` naming this host's address,
  which uvicorn takes as the client when the request comes from a loopback proxy). So a service
  bound to ``0.0.0.0`` by mistake is still not open to the network;
- names a ``Host`` that is not loopback (``localhost``, ``127.0.0.1``, ``[::1]``, or one of
  ``ALLOWED_HOSTS``): a DNS-rebinding page reaches 127.0.0.1 under its own name;
- is a cross-site browser request: an ``Origin`` that is not a loopback origin, or
  ``Sec-Fetch-Site: cross-site``. (A page on another site may POST ``text/plain`` without a
  preflight; this is what stops it writing into the user's memory.)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, without port) is this machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def own_addresses() -> frozenset[str]:
    """This host's non-loopback addresses: ``DAPR_HOST_IP`` and the source address the routing
    table picks (a UDP ``connect`` sends no packet), as a sidecar names this host."""
    found = {os.environ.get("DAPR_HOST_IP", "")}
    probes = ((socket.AF_INET, ("192.0.2.1", 80)), (socket.AF_INET6, ("2001:db8::1", 80)))
    for family, probe in probes:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect(probe)
                found.add(str(sock.getsockname()[0]))
        except OSError:
            continue
    return frozenset(address for address in found if address)


def _host_name(header: str) -> str:
    """The name of a ``Host`` header, without its port."""
    return urlsplit(f"//{header}").hostname or ""


class LocalOnly:
    """Refuses non-local callers, foreign ``Host`` names and cross-site browser requests."""

    def __init__(self, app: ASGIApp, *, extra_hosts: frozenset[str] = frozenset()) -> None:
        self.app = app
        self._extra = extra_hosts
        self._own = own_addresses()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = self._refusal(scope)
            if reason is not None:
                logger.warning(
                    "local mode refused %s %s: %s", scope["method"], scope["path"], reason
                )
                await _forbidden(send, reason)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if client and not (is_loopback(client[0]) or client[0] in self._own):
            return "local mode serves only this machine (set DACA_MODE=production to serve others)"
        headers = {k.decode().lower(): v.decode(errors="replace") for k, v in scope["headers"]}
        host = _host_name(headers.get("host", ""))
        if host and not (is_loopback(host) or host in self._extra):
            return f"Host {host!r} is not this machine (add it to ALLOWED_HOSTS if it is)"
        origin = headers.get("origin")
        if origin is not None and not is_loopback(urlsplit(origin).hostname or ""):
            return "cross-site requests are refused in local mode"
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site requests are refused in local mode"
        return None


async def _forbidden(send: Send, reason: str) -> None:
    body = json.dumps({"detail": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})
