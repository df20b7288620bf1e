"""Invocation, health and metadata endpoints (dapr-http-api.md §4, §5)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daca.runtime.api.common import RuntimeContext, context
from daca.runtime.errors import DaprError
from daca.runtime.resources import SubscriptionSpec

INVOKE_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


async def invoke(request: Request) -> Response:
    target = request.path_params["app_id"]
    if not target:
        raise DaprError(
            404,
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id",
        )
    return await context(request).invoker.invoke(target, request.path_params["method"], request)


async def invoke_by_header(request: Request) -> Response:
    """Any non-API path with a ``dapr-app-id`` header is an invocation of that path."""
    target = request.headers.get("dapr-app-id")
    if not target:
        raise DaprError(
            404,
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id",
        )
    return await context(request).invoker.invoke(target, request.url.path.lstrip("/"), request)


async def serve_peer(request: Request) -> Response:
    return await context(request).invoker.serve_peer(request)


async def healthz(request: Request) -> Response:
    ctx = context(request)
    appid = request.query_params.get("appid")
    if appid and appid != ctx.app_id:
        raise DaprError(500, "ERR_HEALTH_APPID_NOT_MATCH", "dapr app-id does not match")
    if not ctx.ready:
        raise DaprError(500, "ERR_HEALTH_NOT_READY", "dapr is not ready: [app subscriptions]")
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


def metadata_document(ctx: RuntimeContext) -> dict[str, Any]:
    components = [
        {
            "name": name,
            "type": spec.type,
            "version": spec.version,
            "capabilities": ctx.components.capabilities(name),
        }
        for name, spec in ctx.components.specs.items()
    ]
    document: dict[str, Any] = {
        "id": ctx.app_id,
        "runtimeVersion": "daca-" + importlib.metadata.version("daca"),
        "enabledFeatures": [],
        "actors": [],
        "components": components,
        "extended": ctx.extended,
        "subscriptions": [_subscription(spec) for spec in ctx.subscriptions],
        "httpEndpoints": [],
    }
    if ctx.app_port:
        document["appConnectionProperties"] = {
            "port": ctx.app_port,
            "protocol": "http",
            "channelAddress": ctx.app_channel_address,
            "health": {
                "healthCheckPath": "/healthz",
                "healthProbeInterval": "5s",
                "healthProbeTimeout": "500ms",
                "healthThreshold": 3,
            },
        }
    return document


async def get_metadata(request: Request) -> Response:
    return JSONResponse(metadata_document(context(request)))


async def put_metadata(request: Request) -> Response:
    body = await request.body()
    context(request).extended[request.path_params["key"]] = body.decode("utf-8", "replace")
    return Response(status_code=204)


routes = [
    Route("/v1.0/invoke/{app_id}/method/{method:path}", invoke, methods=INVOKE_METHODS),
    Route("/_daca/v1/invoke/{method:path}", serve_peer, methods=INVOKE_METHODS),
    Route("/v1.0/healthz", healthz, methods=["GET"]),
    Route("/v1.0/healthz/outbound", healthz_outbound, methods=["GET"]),
    Route("/v1.0/metadata", get_metadata, methods=["GET"]),
    Route("/v1.0/metadata/{key}", put_metadata, methods=["PUT"]),
]
