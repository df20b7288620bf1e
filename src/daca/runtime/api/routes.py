"""Invocation, health and metadata endpoints (dapr-http-api.md §4, §5)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daca.runtime.api.bodylimit import read_body
from daca.runtime.api.common import RuntimeContext, context
from daca.runtime.errors import HealthAppIdNotMatch, HealthNotReady
from daca.runtime.resources import SubscriptionSpec

INVOKE_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


async def invoke(request: Request) -> Response:
    """``/v1.0/invoke/{app-id}/method/{method}``, or any other path with ``dapr-app-id``."""
    return await context(request).invoker.invoke_request(request)


async def serve_peer(request: Request) -> Response:
    return await context(request).invoker.serve_peer(request)


async def healthz(request: Request) -> Response:
    ctx = context(request)
    appid = request.query_params.get("appid")
    if appid and appid != ctx.app_id:
        raise HealthAppIdNotMatch("dapr app-id does not match")
    if not ctx.ready:
        # daprd names its unready target "runtime" while it waits for the app
        raise HealthNotReady("dapr is not ready: [runtime]")
    return Response(status_code=204)


async def healthz_outbound(request: Request) -> Response:
    return Response(status_code=204)  # the HTTP server only starts once components are loaded


def _subscription(spec: SubscriptionSpec) -> dict[str, Any]:
    rules = [{"match": rule.match, "path": rule.path} for rule in spec.rules]
    if spec.default_route:
        rules.append({"path": spec.default_route})  # daprd omits an empty match
    entry: dict[str, Any] = {
        "pubsubname": spec.pubsubname,
        "topic": spec.topic,
        "rules": rules,
        "type": spec.type,
    }
    if spec.metadata:
        entry["metadata"] = spec.metadata
    if spec.dead_letter_topic:
        entry["deadLetterTopic"] = spec.dead_letter_topic
    return entry


#: daprd's ``actorRuntime`` with actors off and no placement service, which is always daca's case.
ACTORS_DISABLED = {
    "runtimeStatus": "DISABLED",
    "hostReady": False,
    "placement": "placement: disconnected",
}


def runtime_version() -> str:
    return "daca-" + importlib.metadata.version("daca")


def metadata_document(ctx: RuntimeContext) -> dict[str, Any]:
    """daprd's metadata document: empty fields left out, as its JSON encoder does."""
    components = [
        {
            "name": name,
            "type": spec.type,
            "version": spec.version,
            "capabilities": ctx.components.capabilities(name),
        }
        for name, spec in ctx.components.specs.items()
    ]
    connection: dict[str, Any] = {"port": ctx.app_port} if ctx.app_port else {}
    connection |= {"protocol": "http", "channelAddress": ctx.app_channel_address}
    document: dict[str, Any] = {
        "id": ctx.app_id,
        "runtimeVersion": runtime_version(),
        "components": [{k: v for k, v in c.items() if v} for c in components],
        # daprd always adds its version here (deprecated, kept for older clients)
        "extended": {**ctx.extended, "daprRuntimeVersion": runtime_version()},
        "subscriptions": [_subscription(spec) for spec in ctx.subscriptions],
        "appConnectionProperties": connection,
        "actorRuntime": ACTORS_DISABLED,
    }
    return {key: value for key, value in document.items() if value}


async def get_metadata(request: Request) -> Response:
    return JSONResponse(metadata_document(context(request)))


async def put_metadata(request: Request) -> Response:
    body = await read_body(request)
    context(request).extended[request.path_params["key"]] = body.decode("utf-8", "replace")
    return Response(status_code=204)


def _get_only(path: str, endpoint: Any) -> Route:
    """A GET route; Starlette adds HEAD to it, daprd's router does not (HEAD falls through)."""
    route = Route(path, endpoint, methods=["GET"])
    assert route.methods is not None
    route.methods.discard("HEAD")
    return route


routes = [
    Route("/v1.0/invoke/{rest:path}", invoke, methods=INVOKE_METHODS),
    Route("/_daca/v1/invoke/{method:path}", serve_peer, methods=INVOKE_METHODS),
    _get_only("/v1.0/healthz", healthz),
    _get_only("/v1.0/healthz/outbound", healthz_outbound),
    _get_only("/v1.0/metadata", get_metadata),
    Route("/v1.0/metadata/{key}", put_metadata, methods=["PUT"]),
]
