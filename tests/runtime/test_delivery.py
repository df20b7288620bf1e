"""Subscriptions and delivery, driven over HTTP with a real app, on every pub/sub backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from daca.runtime.config import SidecarConfig
from daca.runtime.sidecar import Sidecar
from tests.runtime.harness import FakeApp, running_app, running_sidecar, write_components

PUBSUB_BACKENDS = [pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)]

RESILIENCY = """---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: inbound
spec:
  policies:
    retries:
      fast:
        policy: constant
        duration: 20ms
        maxRetries: 2
  targets:
    components:
      pubsub:
        inbound:
          retry: fast
"""


def subscription_yaml(
    topic: str,
    route: str = "/events",
    dead_letter: str = "",
    rules: str = "",
    version: str = "v2alpha1",
) -> str:
    if version == "v1alpha1":
        routing = f"  route: {route}\n"
    else:
        routing = f"  routes:\n{rules}    default: {route}\n"
    dlq = f"  deadLetterTopic: {dead_letter}\n" if dead_letter else ""
    return (
        f"---\napiVersion: dapr.io/{version}\nkind: Subscription\nmetadata:\n  name: sub-{topic}"
        f"\nspec:\n  pubsubname: pubsub\n  topic: {topic}\n{routing}{dlq}"
    )


@pytest.fixture(params=PUBSUB_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def redis_address(backend: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if backend == "redis" else None


@contextlib.asynccontextmanager
async def system(
    tmp_path: Path, backend: str, redis_address: str | None, app: FakeApp, extra: str = ""
) -> AsyncIterator[tuple[httpx.AsyncClient, Sidecar]]:
    resources = write_components(
        tmp_path / "res", backend, redis_address=redis_address, extra=extra
    )
    async with running_app(app):
        config = SidecarConfig(
            app_id="subscriber",
            app_port=app.port,
            http_port=0,
            resources_paths=(resources,),
            home=tmp_path / "home",
            bundle_redis=False,
        )
        async with running_sidecar(config) as sidecar:
            base = f"http://127.0.0.1:{sidecar.http_port}"
            async with httpx.AsyncClient(base_url=base) as client:
                yield client, sidecar


def answering(*answers: Response) -> Any:
    """An app answer that plays ``answers`` in order, then SUCCESS."""
    queue = list(answers)

    async def answer(request: Request, body: Any) -> Response:
        return queue.pop(0) if queue else JSONResponse({"status": "SUCCESS"})

    return answer


async def test_declarative_subscription_delivers_cloudevents(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp()
    async with system(tmp_path, backend, redis_address, app, subscription_yaml("orders")) as (
        dapr,
        _,
    ):
        response = await dapr.post("/v1.0/publish/pubsub/orders", json={"order": 1})
        assert response.status_code == 204
        [event] = await app.wait_for(1)
    assert event.path == "/events"
    assert event.headers["content-type"] == "application/cloudevents+json"
    assert event.body["data"] == {"order": 1}
    assert event.body["source"] == "subscriber"
    assert event.body["topic"] == "orders"


async def test_v1alpha1_route_and_programmatic_replaces_declarative(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(subscriptions=[{"pubsubname": "pubsub", "topic": "orders", "route": "/prog"}])
    yaml = subscription_yaml("orders", "/declared", version="v1alpha1")
    async with system(tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={})
        [event] = await app.wait_for(1)
        metadata = (await dapr.get("/v1.0/metadata")).json()
    assert event.path == "/prog"
    assert [s["type"] for s in metadata["subscriptions"]] == ["PROGRAMMATIC"]


async def test_routing_rules_pick_the_first_match(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    rules = (
        '    rules:\n      - match: event.type == "widget" && event.data.size == 2\n'
        "        path: /widgets\n      - match: event.type == 'gadget'\n        path: /gadgets\n"
    )
    app = FakeApp()
    yaml = subscription_yaml("things", "/other", rules=rules)
    async with system(tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        for kind, size in (("widget", 2), ("gadget", 1), ("widget", 3)):
            await dapr.post(
                "/v1.0/publish/pubsub/things",
                json={"size": size},
                params={"metadata.cloudevent.type": kind},
            )
        events = await app.wait_for(3)
    routes = sorted((e.body["type"], e.body["data"]["size"], e.path) for e in events)
    assert routes == [("gadget", 1, "/gadgets"), ("widget", 2, "/widgets"), ("widget", 3, "/other")]


@pytest.mark.parametrize(
    "answer",
    [
        JSONResponse({"status": "DROP"}),
        PlainTextResponse("gone", status_code=404),
    ],
)
async def test_drop_and_404_go_to_the_dead_letter_topic(
    tmp_path: Path, backend: str, redis_address: str | None, answer: Response
) -> None:
    app = FakeApp(answer=answering(answer))
    yaml = subscription_yaml("orders", dead_letter="orders-dlq") + subscription_yaml(
        "orders-dlq", "/dead"
    )
    async with system(tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        first, dead = await app.wait_for(2)
    assert (first.path, dead.path) == ("/events", "/dead")
    assert dead.body["id"] == first.body["id"]
    assert dead.body["topic"] == "orders"  # the original event, as published


async def test_retries_follow_the_resiliency_policy_then_dead_letter(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(answer=answering(*(JSONResponse({"status": "RETRY"}) for _ in range(10))))
    yaml = (
        subscription_yaml("orders", dead_letter="dlq")
        + subscription_yaml("dlq", "/dead")
        + RESILIENCY
    )
    async with system(tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        events = await app.wait_for(4)
    assert [e.path for e in events] == ["/events"] * 3 + ["/dead"]  # 1 try + 2 retries


async def test_without_retry_policy_a_failure_goes_straight_to_the_dead_letter_topic(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(answer=answering(PlainTextResponse("boom", status_code=500)))
    yaml = subscription_yaml("orders", dead_letter="dlq") + subscription_yaml("dlq", "/dead")
    async with system(tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        events = await app.wait_for(2)
    assert [e.path for e in events] == ["/events", "/dead"]


async def test_without_dead_letter_topic_a_failed_event_is_delivered_again(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    failures = [
        PlainTextResponse("boom", status_code=503),
        JSONResponse({"status": "RETRY"}),
        JSONResponse({"status": "unknown-status"}),
    ]
    app = FakeApp(answer=answering(*failures))
    async with system(tmp_path, backend, redis_address, app, subscription_yaml("orders")) as (
        dapr,
        _,
    ):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        events = await app.wait_for(4, timeout=20)
    assert len({e.body["id"] for e in events}) == 1  # the same event until it succeeded


async def test_unroutable_event_goes_to_the_dead_letter_topic(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(
        subscriptions=[
            {
                "pubsubname": "pubsub",
                "topic": "orders",
                "deadLetterTopic": "dlq",
                "routes": {"rules": [{"match": 'event.type == "only-this"', "path": "/x"}]},
            },
            {"pubsubname": "pubsub", "topic": "dlq", "route": "/dead"},
        ]
    )
    async with system(tmp_path, backend, redis_address, app) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        [event] = await app.wait_for(1)
    assert event.path == "/dead"


async def test_empty_and_non_json_success_answers_are_success(
    tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(answer=answering(Response(status_code=200), PlainTextResponse("ok")))
    async with system(tmp_path, backend, redis_address, app, subscription_yaml("orders")) as (
        dapr,
        _,
    ):
        for n in range(3):
            await dapr.post("/v1.0/publish/pubsub/orders", json={"n": n})
        events = await app.wait_for(3)
        with pytest.raises(TimeoutError):
            await app.wait_for(4, timeout=0.8)  # nothing is redelivered
    assert sorted(e.body["data"]["n"] for e in events) == [0, 1, 2]
