"""HTTP headers as daprd passes them between callers, sidecars and apps.

An invocation forwards the caller's headers minus the hop-by-hop ones (and those a
``Connection`` header names), and adds the forwarding headers naming this host; a delivery turns
the message's metadata into headers (:func:`delivery_headers`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from daca.runtime.tracecontext import EMPTY_TRACEPARENT, w3c_traceparent

PEER_TOKEN_HEADER = "dapr-peer-token"
APP_ID_HEADER = "dapr-app-id"
API_TOKEN_HEADER = "dapr-api-token"


class UndeliverableError(Exception):
    """The event cannot be sent to the app at all, however often it is tried."""


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
CALLER_SET = frozenset(
    {
        APP_ID_HEADER,
        "traceparent",
        "dapr-caller-app-id",
        "dapr-callee-app-id",
        "dapr-caller-namespace",
    }
)
#: The sidecar's own HTTP server adds these to every answer; the app's would be duplicates.
SERVER_SET = frozenset({"date", "server"})


def nominated(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The header names a ``Connection`` header lists: hop-by-hop too (RFC 7230 §6.1)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }


def forwardable(headers: Iterable[tuple[str, str]], drop: frozenset[str]) -> list[tuple[str, str]]:
    items = list(headers)
    dropped = _HOP_BY_HOP | drop | nominated(items)
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


#: Message metadata that never becomes a header of the delivery (daprd's
#: ``InternalMetadataToHTTPHeader``): trace context is written separately, and hop-by-hop headers.
_NOT_HEADERS = frozenset(
    {
        "traceparent",
        "tracestate",
        "grpc-trace-bin",
        "dapr-app-id",
        "content-type",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def delivery_headers(metadata: Mapping[str, str], envelope: Mapping[str, Any]) -> dict[str, str]:
    """The headers daprd sends with an event besides its content type.

    Every message metadata entry (``pubsubName`` among them) becomes a header, except trace
    context, ``Content-*`` and hop-by-hop ones (and those a ``Connection`` entry names);
    ``grpc-*`` ones are renamed ``dapr-grpc-*``. ``traceparent`` is the metadata's, else the
    event's (``traceparent``, else ``traceid``) as daprd rewrites it, else an empty span's.
    A name that is no HTTP token, or a value with control characters, raises
    :class:`UndeliverableError`: daprd's HTTP client fails every delivery of such an event.
    """
    listed = nominated(metadata.items())
    headers: dict[str, str] = {}
    for key, value in metadata.items():
        name = key.lower()
        if name in _NOT_HEADERS or name in listed or name.endswith("-bin"):
            continue
        if name.startswith("grpc-"):
            key = "dapr-" + name
        elif name in (":method", ":scheme", ":path", ":authority"):
            key = "dapr-" + name[1:]
        if not _TOKEN.fullmatch(key):
            raise UndeliverableError(f"metadata {key!r} is not a valid HTTP header name")
        if _CONTROL.search(value):
            raise UndeliverableError(f"metadata {key!r} is not a valid HTTP header value")
        headers[key] = value
    lowered = {key.lower(): value for key, value in metadata.items()}
    if lowered.get("traceparent"):
        headers["traceparent"] = lowered["traceparent"]
        if lowered.get("tracestate"):
            headers["tracestate"] = lowered["tracestate"]
    else:
        trace = envelope.get("traceparent")
        trace = envelope.get("traceid") if trace is None else trace
        headers["traceparent"] = w3c_traceparent(trace) or EMPTY_TRACEPARENT
    return headers
