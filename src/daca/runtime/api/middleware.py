"""``DAPR_API_TOKEN`` enforcement, as daprd's ``APITokenAuthMiddleware`` does it."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths (without their leading and trailing ``/``) daprd lets through without the token on GET.
EXEMPT_PATHS = frozenset({"v1.0/healthz", "v1.0/healthz/outbound"})
#: Sidecar-to-sidecar forwarding authenticates with the peer token instead (checked by its
#: route). Only that route: any other path, ``/_daca/...`` included, needs the API token.
PEER_PREFIX = "/_daca/v1/invoke/"
TOKEN_HEADER = b"dapr-api-token"

#: What Go's ``http.Error(w, "invalid api token", 401)`` writes.
_DENIED_BODY = b"invalid api token\n"
_DENIED_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-length", str(len(_DENIED_BODY)).encode()),
]


class APITokenMiddleware:
    """Requests without ``dapr-api-token: <token>`` get Go's plain-text 401 ``invalid api token``.

    A request let through loses its ``dapr-api-token`` header, so an invocation does not pass the
    caller's token on to the app (daprd deletes it the same way).
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PEER_PREFIX):
            await self.app(scope, receive, send)
            return
        if not self._allowed(scope):
            await send({"type": "http.response.start", "status": 401, "headers": _DENIED_HEADERS})
            await send({"type": "http.response.body", "body": _DENIED_BODY})
            return
        headers = [(name, value) for name, value in scope["headers"] if name != TOKEN_HEADER]
        await self.app({**scope, "headers": headers}, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if scope["method"] == "GET" and path.strip("/") in EXEMPT_PATHS:
            return True
        for name, value in scope["headers"]:
            if name == TOKEN_HEADER:  # the first one counts, as Go's Header.Get reads it
                return hmac.compare_digest(value, self._token)
        return False
