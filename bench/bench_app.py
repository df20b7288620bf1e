"""The trivial app the runtime benchmark talks to (run by bench/runtime_bench.py)."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

received: list[tuple[int, float]] = []


async def ping(request: Request) -> Response:
    return JSONResponse({"pong": True})


async def subscribe(request: Request) -> Response:
    return JSONResponse([{"pubsubname": "pubsub", "topic": "bench", "route": "/events"}])


async def events(request: Request) -> Response:
    body = await request.json()
    received.append((int(body["data"]["n"]), time.time()))
    return JSONResponse({"status": "SUCCESS"})


async def report(request: Request) -> Response:
    if request.method == "DELETE":
        received.clear()
        return Response(status_code=204)
    since = int(request.query_params.get("since", "0"))
    return JSONResponse({"count": len(received), "items": received[since:]})


app = Starlette(routes=[
    Route("/ping", ping),
    Route("/dapr/subscribe", subscribe),
    Route("/events", events, methods=["POST"]),
    Route("/received", report, methods=["GET", "DELETE"]),
])  # fmt: skip
