"""``DAPR_API_TOKEN`` enforcement, as daprd's ``APITokenAuthMiddleware`` does it."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths daprd lets through without the token.
EXEMPT_PATHS = frozenset({"/v1.0/healthz", "/v1.0/healthz/outbound"})
#: Sidecar-to-sidecar forwarding authenticates with the peer token instead.
PEER_PREFIX = "/_daca/"


class APITokenMiddleware:
    """Requests without ``dapr-api-token: <token>`` get a plain-text 401 ``invalid api token``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = b"invalid api token"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in EXEMPT_PATHS or path.startswith(PEER_PREFIX):
            return True
        for name, value in scope["headers"]:
            if name == b"dapr-api-token":
                return hmac.compare_digest(value, self._token)
        return False
