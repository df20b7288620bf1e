"""Bulk subscribe (``bulkSubscribe.enabled``): batches of events in one POST, on both engines.

The batching tests run on Redis: daprd's ``pubsub.in-memory`` hands its handler one message at
a time and waits for it (the event bus is ``transactional``), so there a batch never holds more
than one event; daca's in-memory broker runs ``concurrency`` handlers as its Redis one does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from daca.runtime.batching import Batcher, BatchReleasedError, Pending
from daca.runtime.bulkdelivery import read_statuses
from daca.runtime.delivery import Outcome
from daca.runtime.pubsub.base import Message
from daca.runtime.resources import BulkSubscribe
from daca.runtime.subscriptions import parse_programmatic
from daca.runtime.tracecontext import EMPTY_TRACEPARENT
from tests.engines import Engine, per_engine
from tests.runtime.api.helpers import eventually, raw_redis
from tests.runtime.harness import FakeApp, Received
from tests.runtime.test_delivery import (
    RESILIENCY,
    acknowledged_for_good,
    subscription_yaml,
    system,
)


def bulk_yaml(
    topic: str = "orders",
    *,
    count: int = 0,
    wait_ms: int = 0,
    dead_letter: str = "",
    metadata: str = "",
) -> str:
    limits = f"    maxMessagesCount: {count}\n    maxAwaitDurationMs: {wait_ms}\n"
    dlq = f"  deadLetterTopic: {dead_letter}\n" if dead_letter else ""
    return (
        f"---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: bulk-{topic}\n"
        f"spec:\n  pubsubname: pubsub\n  topic: {topic}\n  routes:\n    default: /bulk\n{dlq}"
        f"{metadata}  bulkSubscribe:\n    enabled: true\n{limits}"
    )


def statuses(decide: Any) -> Any:
    """An app answer giving each entry ``decide(entry)``: a status, or ``None`` to leave the
    entry out of the answer."""

    async def answer(request: Request, body: Any) -> Response:
        if request.url.path != "/bulk":
            return JSONResponse({"status": "SUCCESS"})
        answers = [
            {"entryId": entry["entryId"], "status": status}
            for entry in body["entries"]
            if (status := decide(entry)) is not None
        ]
        return JSONResponse({"statuses": answers})

    return answer


def bulk_requests(app: FakeApp) -> list[Received]:
    return [received for received in app.received if received.path == "/bulk"]


def numbers(request: Received) -> list[int]:
    return sorted(entry["event"]["data"]["n"] for entry in request.body["entries"])


async def publish(dapr: Any, *values: int, topic: str = "orders") -> None:
    for n in values:
        answer = await dapr.post(f"/v1.0/publish/pubsub/{topic}", json={"n": n})
        assert answer.status_code == 204


@pytest.mark.redis
async def test_events_published_together_arrive_in_one_bulk_request(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    app = FakeApp(answer=statuses(lambda entry: "SUCCESS"))
    yaml = bulk_yaml(count=3, wait_ms=10_000)
    async with system(engine, tmp_path, "redis", redis_url, app, yaml) as (dapr, _):
        await publish(dapr, 0, 1, 2)
        [request] = await app.wait_for(1)
        await acknowledged_for_good(redis_url, "orders", "subscriber")
        with pytest.raises(TimeoutError):  # SUCCESS acknowledged every entry
            await app.wait_for(2, timeout=1.5)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["pubsubname"] == "pubsub"
    assert request.headers["traceparent"] == EMPTY_TRACEPARENT
    body = request.body
    assert set(body) == {"id", "type", "topic", "pubsubname", "metadata", "entries"}
    assert (body["type"], body["topic"], body["pubsubname"]) == (
        "com.dapr.event.sent.bulk",
        "orders",
        "pubsub",
    )
    assert body["metadata"] == {"pubsubName": "pubsub"}
    assert numbers(request) == [0, 1, 2]
    assert len({entry["entryId"] for entry in body["entries"]}) == 3
    for entry in body["entries"]:
        assert set(entry) == {"entryId", "event", "metadata", "contentType"}
        assert entry["contentType"] == "application/cloudevents+json"
        assert entry["metadata"] == {}
        event = entry["event"]
        assert (event["type"], event["topic"], event["source"]) == (
            "com.dapr.event.sent",
            "orders",
            "subscriber",
        )
        assert event["datacontenttype"] == "application/json"


@pytest.mark.redis
async def test_drop_retry_and_missing_entries(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    """SUCCESS is acknowledged; DROP goes to the dead-letter topic at once; RETRY and an entry
    left out of the answer are sent again, alone, per the retry policy (same request id), and
    then dead-lettered."""
    answers = {0: "SUCCESS", 1: "DROP", 2: "RETRY", 3: None}
    app = FakeApp(answer=statuses(lambda entry: answers[entry["event"]["data"]["n"]]))
    yaml = bulk_yaml(count=4, wait_ms=10_000, dead_letter="dlq") + subscription_yaml("dlq", "/dead")
    files = {"resiliency.yaml": RESILIENCY}
    async with system(engine, tmp_path, "redis", redis_url, app, yaml, files) as (dapr, _):
        await publish(dapr, 0, 1, 2, 3)
        await app.wait_for(6)  # 1 try + 2 retries, and 3 dead letters
        await acknowledged_for_good(redis_url, "orders", "subscriber")
        with pytest.raises(TimeoutError):
            await app.wait_for(7, timeout=1.5)
    tries = bulk_requests(app)
    assert [numbers(request) for request in tries] == [[0, 1, 2, 3], [2, 3], [2, 3]]
    assert len({request.body["id"] for request in tries}) == 1
    first_ids = {e["entryId"] for e in tries[0].body["entries"] if e["event"]["data"]["n"] >= 2}
    assert {e["entryId"] for e in tries[2].body["entries"]} == first_ids
    dead = [received for received in app.received if received.path == "/dead"]
    assert sorted(event.body["data"]["n"] for event in dead) == [1, 2, 3]
    assert all(event.body["topic"] == "orders" for event in dead)  # the original events


@pytest.mark.redis
@pytest.mark.parametrize(
    "answer",
    [
        PlainTextResponse("busy", status_code=503),
        PlainTextResponse("not json"),
        JSONResponse({"statuses": "SUCCESS"}),
        JSONResponse({"statuses": [{"entryId": "somebody-else", "status": "SUCCESS"}]}),
    ],
    ids=["503", "not-json", "wrong-type", "unknown-entry"],
)
async def test_a_failed_request_retries_every_entry_then_dead_letters(
    engine: Engine, tmp_path: Path, redis_url: str, answer: Response
) -> None:
    async def respond(request: Request, body: Any) -> Response:
        return answer if request.url.path == "/bulk" else JSONResponse({})

    app = FakeApp(answer=respond)
    yaml = bulk_yaml(count=2, wait_ms=10_000, dead_letter="dlq") + subscription_yaml("dlq", "/dead")
    async with system(engine, tmp_path, "redis", redis_url, app, yaml) as (dapr, _):
        await publish(dapr, 0, 1)
        await app.wait_for(3)
        await acknowledged_for_good(redis_url, "orders", "subscriber")
    assert len(bulk_requests(app)) == 1  # no retry policy: dead-lettered after one try
    dead = [received for received in app.received if received.path == "/dead"]
    assert sorted(event.body["data"]["n"] for event in dead) == [0, 1]


@pytest.mark.redis
async def test_404_drops_every_entry_without_the_dead_letter_topic(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    """Unlike one-by-one delivery, daprd sends nothing to the dead-letter topic on a bulk 404."""

    async def gone(request: Request, body: Any) -> Response:
        return PlainTextResponse("gone", status_code=404)

    app = FakeApp(answer=gone)
    yaml = bulk_yaml(count=2, wait_ms=10_000, dead_letter="dlq") + subscription_yaml("dlq", "/dead")
    async with system(engine, tmp_path, "redis", redis_url, app, yaml) as (dapr, _):
        await publish(dapr, 0, 1)
        [request] = await app.wait_for(1)
        await acknowledged_for_good(redis_url, "orders", "subscriber")
        with pytest.raises(TimeoutError):
            await app.wait_for(2, timeout=1.5)
    assert numbers(request) == [0, 1]


async def test_without_dead_letter_topic_a_failed_entry_is_delivered_again(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    """The documented difference of one-by-one delivery (docs/runtime.md): daprd's bulk handler
    fails the entry, and the component then acknowledges it (Redis >= 1.17) or never
    redelivers it (in-memory); daca's broker delivers it again."""
    tries: list[str] = []

    def decide(entry: dict[str, Any]) -> str:
        tries.append(entry["event"]["id"])
        return "RETRY" if len(tries) == 1 else "SUCCESS"

    app = FakeApp(answer=statuses(decide))
    deliveries = per_engine(engine, daca=2, daprd=1)
    async with system(engine, tmp_path, backend, redis_address, app, bulk_yaml(wait_ms=100)) as (
        dapr,
        _,
    ):
        await publish(dapr, 0)
        await app.wait_for(deliveries, timeout=20)
        if redis_address is not None:
            await acknowledged_for_good(redis_address, "orders", "subscriber")
        with pytest.raises(TimeoutError):
            await app.wait_for(deliveries + 1, timeout=1.5)
    assert len(tries) == deliveries
    assert len(set(tries)) == 1


@pytest.mark.redis
async def test_programmatic_bulk_subscribe(engine: Engine, tmp_path: Path, redis_url: str) -> None:
    subscription = {
        "pubsubname": "pubsub",
        "topic": "orders",
        "route": "/bulk",
        "bulkSubscribe": {"enabled": True, "maxMessagesCount": 2, "maxAwaitDurationMs": 10_000},
    }
    app = FakeApp(subscriptions=[subscription], answer=statuses(lambda entry: "SUCCESS"))
    async with system(engine, tmp_path, "redis", redis_url, app) as (dapr, _):
        await publish(dapr, 0, 1)
        [request] = await app.wait_for(1)
    assert request.body["type"] == "com.dapr.event.sent.bulk"
    assert numbers(request) == [0, 1]


async def test_a_lone_event_is_flushed_after_max_await_duration(
    engine: Engine, tmp_path: Path, backend: str, redis_address: str | None
) -> None:
    app = FakeApp(answer=statuses(lambda entry: "SUCCESS"))
    yaml = bulk_yaml(count=50, wait_ms=200)
    async with system(engine, tmp_path, backend, redis_address, app, yaml) as (dapr, _):
        await publish(dapr, 7)
        [request] = await app.wait_for(1)
    assert numbers(request) == [7]


@pytest.mark.redis
async def test_raw_payload_entries_are_base64(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    raw = '  metadata:\n    rawPayload: "true"\n'
    app = FakeApp(answer=statuses(lambda entry: "SUCCESS"))
    async with system(
        engine, tmp_path, "redis", redis_url, app, bulk_yaml(wait_ms=100, metadata=raw)
    ) as (dapr, _):
        await dapr.post(
            "/v1.0/publish/pubsub/orders?metadata.rawPayload=true",
            content=b"plain bytes",
            headers={"content-type": "application/octet-stream"},
        )
        [request] = await app.wait_for(1)
    [entry] = request.body["entries"]
    assert entry["contentType"] == "application/octet-stream"
    assert entry["event"] == "cGxhaW4gYnl0ZXM="  # base64 of b"plain bytes"


# --- the pieces, in process ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (200, b'{"statuses": [{"entryId": "a", "status": "SUCCESS"}]}', ["SUCCESS", "RETRY"]),
        (200, b'{"Statuses": [{"EntryID": "b", "Status": "DROP"}]} x', ["RETRY", "DROP"]),
        (200, b'{"statuses": [{"entryId": "a", "status": "success"}, null]}', ["RETRY"] * 2),
        (200, b'{"statuses": [{"entryId": "a", "status": ""}]}', ["RETRY", "RETRY"]),
        (200, b"null", ["RETRY", "RETRY"]),
        (200, b"", ["RETRY", "RETRY"]),
        (200, b'{"statuses": [{"entryId": 5}]}', ["RETRY", "RETRY"]),
        (404, b"", ["DROP", "DROP"]),
        (500, b'{"statuses": [{"entryId": "a", "status": "SUCCESS"}]}', ["RETRY", "RETRY"]),
    ],
)
def test_read_statuses(status: int, content: bytes, expected: list[str]) -> None:
    answers = read_statuses(status, content, ["a", "b"])
    assert [answers[i] for i in ("a", "b")] == [Outcome(value) for value in expected]


async def test_stopping_releases_handlers_waiting_in_a_batch() -> None:
    flushed: list[list[str]] = []

    async def flush(batch: list[Pending]) -> None:
        flushed.append([pending.entry_id for pending in batch])
        for pending in batch:
            pending.ack()

    batcher = Batcher(flush, size=10, wait=3600, name="t")
    waiting = asyncio.create_task(batcher.submit(Message("t", b"{}")))
    await asyncio.sleep(0)
    await batcher.stop()
    with pytest.raises(BatchReleasedError):
        await waiting
    assert flushed == []


async def test_closing_releases_the_pending_batch_at_once() -> None:
    async def flush(batch: list[Pending]) -> None:
        raise AssertionError("nothing is flushed once closing")

    batcher = Batcher(flush, size=10, wait=3600, name="t")
    waiting = asyncio.create_task(batcher.submit(Message("t", b"{}")))
    await asyncio.sleep(0)
    batcher.close()
    with pytest.raises(BatchReleasedError):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(BatchReleasedError):  # a message arriving now is not taken either
        await batcher.submit(Message("t", b"{}"))
    await batcher.stop()


async def test_a_flush_that_raises_fails_its_entries_and_the_next_batch_runs() -> None:
    calls = 0

    async def flush(batch: list[Pending]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        for pending in batch:
            pending.ack()

    batcher = Batcher(flush, size=1, wait=3600, name="t")
    with pytest.raises(BatchReleasedError):
        await batcher.submit(Message("t", b"{}"))
    await asyncio.wait_for(batcher.submit(Message("t", b"{}")), 5)
    await batcher.stop()


@pytest.mark.redis
async def test_stopping_the_sidecar_does_not_wait_for_a_pending_batch(
    engine: Engine, tmp_path: Path, redis_url: str
) -> None:
    """A batch waiting for a minute when the sidecar stops: the stop ends at once, and the event
    is not sent but stays pending for the next start (daprd's last flush runs on a cancelled
    context, so its request fails and Redis keeps the entry)."""
    app = FakeApp(answer=statuses(lambda entry: "SUCCESS"))
    yaml = bulk_yaml(count=50, wait_ms=60_000)
    async with system(engine, tmp_path, "redis", redis_url, app, yaml) as (dapr, sidecar):
        await publish(dapr, 0)
        async with raw_redis(redis_url) as client:

            async def held() -> bool:
                groups = await client.xinfo_groups("orders")
                return any(group["pending"] == 1 for group in groups)

            await eventually(held)
            await asyncio.wait_for(sidecar.stop(), 30)
            pending = (await client.xpending("orders", "subscriber"))["pending"]
    assert (len(bulk_requests(app)), pending) == (0, 1)


def test_programmatic_bulk_subscribe_is_read_and_a_negative_limit_skips_the_entry() -> None:
    entry = {"pubsubname": "pubsub", "topic": "t", "route": "/bulk"}
    bulk = {"enabled": True, "maxMessagesCount": 5}
    [spec] = parse_programmatic([{**entry, "bulkSubscribe": bulk}])
    assert spec.bulk_subscribe == BulkSubscribe(True, 5, 0)
    assert parse_programmatic([{**entry, "bulkSubscribe": {"maxAwaitDurationMs": -1}}]) == []
