"""The sidecar's Starlette application."""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from daca.runtime.api import publish, routes, state
from daca.runtime.api.bodylimit import BodyLimit, BodyTooLargeError
from daca.runtime.api.common import RuntimeContext, error_response
from daca.runtime.api.middleware import APITokenMiddleware
from daca.runtime.errors import BodyReadFailed, DaprError
from daca.runtime.invoke import ORIGINAL_PATH_KEY, PEER_PATH
from daca.runtime.invoketarget import go_clean
from daca.runtime.metrics import CountRequests


async def _dapr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DaprError)
    return error_response(exc)


async def _body_too_large(request: Request, exc: Exception) -> Response:
    """What daprd answers when an endpoint cannot read its body (``ErrBodyRead``)."""
    return error_response(BodyReadFailed(f"failed to read request body: {exc}"))


class CleanPath:
    """Route on the cleaned path (``//`` and ``.`` segments and a trailing ``/`` removed).

    daprd's router does the same (``CleanPathMiddleware``); the original path stays in the scope
    for the invocation endpoints, which cut the method from it as daprd does. A peer sidecar's
    forwarded call carries a method that is already clean.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(PEER_PATH):
            raw: bytes | None = scope.get("raw_path")
            escaped = raw.decode("latin-1") if raw else quote(scope["path"])
            cleaned = go_clean(escaped)
            if cleaned != escaped:  # cleaned as escaped, as daprd does: %2F is no separator
                scope = {**scope, "path": unquote(cleaned), ORIGINAL_PATH_KEY: scope["path"]}
        await self.app(scope, receive, send)


def build_app(
    ctx: RuntimeContext, *, api_token: str | None = None, max_body_size: int = 0
) -> ASGIApp:
    """The HTTP API over ``ctx``; with ``api_token``, every call but health needs it; request
    bodies are read up to ``max_body_size`` bytes (0: any size)."""
    catch_all = Route("/{path:path}", routes.invoke, methods=routes.INVOKE_METHODS)
    app = Starlette(
        routes=[*state.routes, *publish.routes, *routes.routes, catch_all],
        exception_handlers={DaprError: _dapr_error, BodyTooLargeError: _body_too_large},
    )
    app.state.context = ctx
    cleaned = CleanPath(app)
    checked = APITokenMiddleware(cleaned, api_token) if api_token else cleaned
    return CountRequests(BodyLimit(checked, max_body_size), ctx.metrics)
