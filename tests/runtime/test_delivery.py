"""Subscriptions and delivery, driven over HTTP with a real app, on every pub/sub backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from daca.runtime.config import SidecarConfig
from tests.engines import Engine, SidecarHandle, per_engine
from tests.runtime.api.helpers import eventually, raw_redis
from tests.runtime.harness import FakeApp, running_app, write_components

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


@contextlib.asynccontextmanager
async def system(
    engine: Engine,
    tmp_path: Path,
    backend: str,
    redis_address: str | None,
    app: FakeApp,
    extra: str = "",
    files: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[httpx.AsyncClient, SidecarHandle]]:
    """A sidecar for app-id ``subscriber`` and ``app``; ``extra`` documents follow the components
    in their file, ``files`` are more resource files (name: text)."""
    resources = write_components(
        tmp_path / "res", backend, redis_address=redis_address, extra=extra
    )
    for name, text in (files or {}).items():
        (resources / name).write_text(text)
    async with running_app(app):
        config = SidecarConfig(
            app_id="subscriber",
            app_port=app.port,
            http_port=0,
            resources_paths=(resources,),
            home=tmp_path / "home",
            bundle_redis=False,
        )
        async with engine.sidecar(config) as sidecar:
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
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp()
    async with system(
        engine, tmp_path, backend, redis_address, app, subscription_yaml("orders")
    ) as (
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
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(subscriptions=[{"pubsubname": "pubsub", "topic": "orders", "route": "/prog"}])
    yaml = subscription_yaml("orders", "/declared", version="v1alpha1")
    async with system(engine, tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={})
        [event] = await app.wait_for(1)
        metadata = (await dapr.get("/v1.0/metadata")).json()
    assert event.path == "/prog"
    assert [s["type"] for s in metadata["subscriptions"]] == ["PROGRAMMATIC"]


async def test_routing_rules_pick_the_first_match(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    rules = (
        '    rules:\n      - match: event.type == "widget" && event.data.size == 2\n'
        "        path: /widgets\n      - match: event.type == 'gadget'\n        path: /gadgets\n"
    )
    app = FakeApp()
    yaml = subscription_yaml("things", "/other", rules=rules)
    async with system(engine, tmp_path, backend, redis_address, app, yaml) as (dapr, _):
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
        # Go decodes the first JSON value, and matches the "status" key in any case.
        Response(b'{"Status": "DROP"} and more', media_type="application/json"),
    ],
    ids=["drop", "404", "drop-any-case"],
)
async def test_drop_and_404_go_to_the_dead_letter_topic(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None, answer: Response
) -> None:
    app = FakeApp(answer=answering(answer))
    yaml = subscription_yaml("orders", dead_letter="orders-dlq") + subscription_yaml(
        "orders-dlq", "/dead"
    )
    async with system(engine, tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        first, dead = await app.wait_for(2)
    assert (first.path, dead.path) == ("/events", "/dead")
    assert dead.body["id"] == first.body["id"]
    assert dead.body["topic"] == "orders"  # the original event, as published


async def test_retries_follow_the_resiliency_policy_then_dead_letter(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(answer=answering(*(JSONResponse({"status": "RETRY"}) for _ in range(10))))
    yaml = subscription_yaml("orders", dead_letter="dlq") + subscription_yaml("dlq", "/dead")
    files = {"resiliency.yaml": RESILIENCY}
    async with system(engine, tmp_path, backend, redis_address, app, yaml, files) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        events = await app.wait_for(4)
    assert [e.path for e in events] == ["/events"] * 3 + ["/dead"]  # 1 try + 2 retries


@pytest.mark.parametrize("first", [True, False], ids=["first-document", "later-document"])
async def test_a_resiliency_counts_only_as_the_first_document_of_its_file(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None, first: bool
) -> None:
    """daprd reads one document per resiliency file (``LoadLocalResiliency``): a Resiliency after
    ``---`` in a file that starts with something else is ignored, so the failure is not retried."""
    app = FakeApp(answer=answering(*(JSONResponse({"status": "RETRY"}) for _ in range(10))))
    yaml = subscription_yaml("orders", dead_letter="dlq") + subscription_yaml("dlq", "/dead")
    text = RESILIENCY + yaml if first else yaml + RESILIENCY
    files = {"mixed.yaml": text.removeprefix("---\n")}
    async with system(engine, tmp_path, backend, redis_address, app, files=files) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        events = await app.wait_for(4 if first else 2)
    tries = 3 if first else 1
    assert [e.path for e in events][: tries + 1] == ["/events"] * tries + ["/dead"]


async def test_without_retry_policy_a_failure_goes_straight_to_the_dead_letter_topic(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(answer=answering(PlainTextResponse("boom", status_code=500)))
    yaml = subscription_yaml("orders", dead_letter="dlq") + subscription_yaml("dlq", "/dead")
    async with system(engine, tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        events = await app.wait_for(2)
    assert [e.path for e in events] == ["/events", "/dead"]


async def test_without_dead_letter_topic_a_failed_event_is_delivered_again(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    """Documented difference (docs/runtime.md): with no retry policy and no dead-letter topic
    daca keeps a failed event and delivers it again until it succeeds; daprd >= 1.17 delivers it
    once (Redis acknowledges it, the in-memory broker never redelivers): it is lost."""
    failures = [
        PlainTextResponse("boom", status_code=503),
        JSONResponse({"status": "RETRY"}),
        JSONResponse({"status": "unknown-status"}),
    ]
    app = FakeApp(answer=answering(*failures))
    deliveries = per_engine(engine, daca=4, daprd=1)
    async with system(
        engine, tmp_path, backend, redis_address, app, subscription_yaml("orders")
    ) as (
        dapr,
        _,
    ):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        events = await app.wait_for(deliveries, timeout=20)
        if engine.name == "daprd" and redis_address is not None:
            await acknowledged_for_good(redis_address, "orders", "subscriber")
        with pytest.raises(TimeoutError):  # daca: it succeeded; daprd: it is gone
            await app.wait_for(deliveries + 1, timeout=1.5)
    assert len(events) == deliveries
    assert len({e.body["id"] for e in events}) == 1  # the same event until it succeeded


async def acknowledged_for_good(address: str, topic: str, group: str) -> None:
    """Wait until ``group`` has read every entry of ``topic`` and none is pending: no consumer
    of the group will ever be given them again."""
    async with raw_redis(address) as client:

        async def settled() -> bool:
            stream = await client.xrange(topic)
            assert stream
            last = stream[-1][0]
            (info,) = [g for g in await client.xinfo_groups(topic) if g["name"].decode() == group]
            return bool(info["last-delivered-id"] == last and info["pending"] == 0)

        await eventually(settled)


async def test_unroutable_event_goes_to_the_dead_letter_topic(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
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
    async with system(engine, tmp_path, backend, redis_address, app) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        [event] = await app.wait_for(1)
    assert event.path == "/dead"


async def test_a_rule_that_fails_to_evaluate_sends_the_event_to_the_dead_letter_topic(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    """JSON numbers are doubles in CEL, so ``+ 1`` (an int) fails: daprd tries no later rule
    and no default, and dead-letters the event."""
    app = FakeApp(
        subscriptions=[
            {
                "pubsubname": "pubsub",
                "topic": "orders",
                "deadLetterTopic": "dlq",
                "routes": {
                    "rules": [{"match": "event.data.n + 1 > 0", "path": "/x"}],
                    "default": "/default",
                },
            },
            {"pubsubname": "pubsub", "topic": "dlq", "route": "/dead"},
        ]
    )
    async with system(engine, tmp_path, backend, redis_address, app) as (dapr, _):
        await dapr.post("/v1.0/publish/pubsub/orders", json={"n": 1})
        [event] = await app.wait_for(1)
    assert event.path == "/dead"


async def test_empty_and_non_json_success_answers_are_success(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    """A 2xx whose body Go cannot decode into ``{"status": string}`` is a success."""
    answers = [
        Response(status_code=200),
        PlainTextResponse("ok"),
        JSONResponse({"status": 5}),
        JSONResponse(["RETRY"]),
        JSONResponse({"status": None}),
        Response(b'{"status": "SUCCESS"} trailing', status_code=202),
    ]
    app = FakeApp(answer=answering(*answers))
    count = len(answers) + 1
    async with system(
        engine, tmp_path, backend, redis_address, app, subscription_yaml("orders")
    ) as (
        dapr,
        _,
    ):
        for n in range(count):
            await dapr.post("/v1.0/publish/pubsub/orders", json={"n": n})
        events = await app.wait_for(count)
        with pytest.raises(TimeoutError):
            await app.wait_for(count + 1, timeout=1.5)  # nothing is redelivered
    assert sorted(e.body["data"]["n"] for e in events) == list(range(count))
