"""The sidecar's Starlette application."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from daca.runtime.api import publish, routes, state
from daca.runtime.api.common import RuntimeContext, error_response
from daca.runtime.api.middleware import APITokenMiddleware
from daca.runtime.errors import DaprError


async def _dapr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DaprError)
    return error_response(exc)


def build_app(ctx: RuntimeContext, *, api_token: str | None = None) -> ASGIApp:
    """The HTTP API over ``ctx``; with ``api_token``, every call but health needs it."""
    catch_all = Route("/{path:path}", routes.invoke_by_header, methods=routes.INVOKE_METHODS)
    app = Starlette(
        routes=[*state.routes, *publish.routes, *routes.routes, catch_all],
        exception_handlers={DaprError: _dapr_error},
    )
    app.state.context = ctx
    return APITokenMiddleware(app, api_token) if api_token else app
