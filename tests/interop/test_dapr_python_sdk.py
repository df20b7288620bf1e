"""An app written with the official Dapr Python SDK's FastAPI extension runs on this runtime."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Body, FastAPI

from daca.runtime.config import SidecarConfig
from tests.runtime.harness import running_sidecar, serve, write_components

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the SDK's grpc/protobuf imports may warn
    from dapr.ext.fastapi import DaprApp


def sdk_app(received: asyncio.Queue[Any]) -> FastAPI:
    app = FastAPI()
    dapr_app = DaprApp(app)

    @dapr_app.subscribe(pubsub="pubsub", topic="orders", dead_letter_topic="orders-dead")
    async def on_order(event: dict[str, Any] = Body()) -> dict[str, str]:  # noqa: B008
        await received.put(event)
        return {"status": "SUCCESS"}

    return app


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_dapr_app_subscription_receives_events(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    address = request.getfixturevalue("redis_url") if backend == "redis" else None
    resources = write_components(tmp_path / "res", backend, redis_address=address)
    received: asyncio.Queue[Any] = asyncio.Queue()
    async with serve(sdk_app(received)) as app_port:
        config = SidecarConfig(
            app_id="sdk-app",
            app_port=app_port,
            http_port=0,
            resources_paths=(resources,),
            home=tmp_path / "home",
            bundle_redis=False,
        )
        async with running_sidecar(config) as sidecar:
            base = f"http://127.0.0.1:{sidecar.http_port}"
            async with httpx.AsyncClient(base_url=base) as client:
                metadata = (await client.get("/v1.0/metadata")).json()
                published = await client.post("/v1.0/publish/pubsub/orders", json={"id": 7})
            event = await asyncio.wait_for(received.get(), 10)
    assert published.status_code == 204
    [subscription] = metadata["subscriptions"]
    assert subscription["type"] == "PROGRAMMATIC"
    assert subscription["rules"] == [{"path": "/events/pubsub/orders"}]
    assert subscription["deadLetterTopic"] == "orders-dead"
    assert event["data"] == {"id": 7}
    assert event["source"] == "sdk-app"
