"""Publish over HTTP (dapr-http-api.md §2): status codes and the CloudEvent envelope delivered.

The envelope is checked where it ends up: a FakeApp subscribed through the sidecar receives it
(every backend), and on Redis the stream entry itself is read with XRANGE.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.runtime.api.helpers import (
    JSON,
    app_with_sidecar,
    assert_error,
    client_for,
    raw_redis,
    sidecar_config,
)
from tests.runtime.harness import FakeApp, running_app, running_sidecar, write_components

SUBSCRIPTIONS = [
    {"pubsubname": "pubsub", "topic": "t", "route": "/t"},
    {"pubsubname": "pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"}},
    {"pubsubname": "pubsub", "topic": "a/b/c", "route": "/abc"},
    {"pubsubname": "pubsub", "topic": "bulk", "route": "/bulk"},
]
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
CLOUDEVENTS = "application/cloudevents+json"
JSON_TYPE = {"content-type": JSON}

Pair = tuple[httpx.AsyncClient, FakeApp]


@pytest_asyncio.fixture
async def sub(resources: Path, tmp_path: Path) -> AsyncIterator[Pair]:
    """A sidecar (app-id ``myapp``) whose app subscribes to :data:`SUBSCRIPTIONS`."""
    async with app_with_sidecar(tmp_path, resources, SUBSCRIPTIONS) as pair:
        yield pair


async def publish_one(pair: Pair, topic: str = "t", **request: Any) -> dict[str, Any]:
    """Publish, expect 204, and return the envelope the app received for it."""
    dapr, app = pair
    before = len(app.received)
    r = await dapr.post(f"/v1.0/publish/pubsub/{topic}", **request)
    assert r.status_code == 204, r.text
    assert r.content == b""
    received = await app.wait_for(before + 1)
    assert len(received) == before + 1, received
    body: dict[str, Any] = received[-1].body
    assert isinstance(body, dict), body
    return body


def parse_time(value: str) -> datetime:
    assert RFC3339.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- errors (no app needed) ----------------------------------------------------------------------


async def test_publish_errors(dapr: httpx.AsyncClient) -> None:
    r = await dapr.post("/v1.0/publish/nope/t", json={"a": 1})
    assert_error(r, 404, "ERR_PUBSUB_NOT_FOUND")
    assert r.json()["message"] == "pubsub nope is not found"
    r = await dapr.post("/v1.0/publish/pubsub/t?metadata.rawPayload=notabool", json={"a": 1})
    assert_error(r, 400, "ERR_PUBSUB_REQUEST_METADATA")
    r = await dapr.post("/v1.0/publish/pubsub/", json={"a": 1})
    assert_error(r, 404, "ERR_TOPIC_NAME_EMPTY")
    r = await dapr.post(
        "/v1.0/publish/pubsub/t", content=b"{not json", headers={"content-type": CLOUDEVENTS}
    )
    assert_error(r, 500, "ERR_PUBSUB_CLOUD_EVENTS_SER")
    r = await dapr.put("/v1.0/publish/pubsub/t", json={"a": 1})  # PUT works as POST
    assert r.status_code == 204, r.text
    assert r.content == b""


async def test_bulk_publish_errors(dapr: httpx.AsyncClient) -> None:
    event = {"event": {"a": 1}, "contentType": JSON}
    bad_bodies = {
        "missing-entry-id": [event],
        "empty-entry-id": [{"entryId": "", **event}],
        "duplicate-entry-id": [{"entryId": "1", **event}, {"entryId": "1", **event}],
    }
    for prefix in ("/v1.0-alpha1", "/v1.0"):
        for name, body in bad_bodies.items():
            r = await dapr.post(f"{prefix}/publish/bulk/pubsub/t", json=body)
            assert r.status_code == 400, (prefix, name, r.text)
            assert_error(r, 400, "ERR_PUBSUB_EVENTS_SER")
        r = await dapr.post(f"{prefix}/publish/bulk/nope/t", json=[{"entryId": "1", **event}])
        assert_error(r, 404, "ERR_PUBSUB_NOT_FOUND", "pubsub nope is not found")
        r = await dapr.post(f"{prefix}/publish/bulk/pubsub/t", content=b"[{", headers=JSON_TYPE)
        assert r.status_code == 400, r.text  # daprd: ERR_PUBSUB_EVENTS_SER (unmarshal error)
        assert r.json()["errorCode"]
        # Request-level metadata is checked before any entry is published (onBulkPublish).
        r = await dapr.post(
            f"{prefix}/publish/bulk/pubsub/t",
            params={"metadata.rawPayload": "notabool"},
            json=[{"entryId": "1", **event}],
        )
        assert_error(r, 400, "ERR_PUBSUB_REQUEST_METADATA")


# --- the envelope --------------------------------------------------------------------------------


async def test_envelope_fields_for_json(sub: Pair) -> None:
    raw = b'{"order": 7, "big": 12345678901234567890, "f": 0.12345678901234567}'
    envelope = await publish_one(sub, content=raw, headers={"content-type": JSON})
    assert uuid.UUID(envelope["id"]).version == 4
    assert envelope["source"] == "myapp"
    assert envelope["type"] == "com.dapr.event.sent"
    assert envelope["specversion"] == "1.0"
    assert envelope["datacontenttype"] == JSON
    assert envelope["data"] == {"order": 7, "big": 12345678901234567890, "f": 0.12345678901234567}
    assert envelope["topic"] == "t"
    assert envelope["pubsubname"] == "pubsub"
    assert TRACEPARENT.match(envelope["traceparent"]), envelope
    assert envelope["traceid"] == envelope["traceparent"]
    sent = parse_time(envelope["time"])
    assert abs(datetime.now(UTC) - sent) < timedelta(seconds=30)
    for absent in ("data_base64", "subject", "expiration"):
        assert absent not in envelope, envelope
    delivered = sub[1].received[-1]
    assert delivered.path == "/t"
    assert delivered.headers["content-type"].startswith(CLOUDEVENTS)
    again = await publish_one(sub, json={"order": 8})
    assert again["id"] != envelope["id"]


async def test_data_follows_the_content_type(sub: Pair) -> None:
    # No Content-Type at all: text/plain, and data is the body as a string.
    envelope = await publish_one(sub, content=b"plain words")
    assert envelope["datacontenttype"] == "text/plain"
    assert envelope["data"] == "plain words"
    # JSON with parameters is still parsed.
    envelope = await publish_one(
        sub, content=b'{"a": [1, 2]}', headers={"content-type": "application/json; charset=utf-8"}
    )
    assert envelope["datacontenttype"] == "application/json; charset=utf-8"
    assert envelope["data"] == {"a": [1, 2]}
    # Invalid JSON labelled application/json is not an error: data is the string.
    envelope = await publish_one(sub, content=b"{not json", headers={"content-type": JSON})
    assert envelope["datacontenttype"] == JSON
    assert envelope["data"] == "{not json"
    # Binary data goes to data_base64.
    blob = bytes(range(256))
    octet = "application/octet-stream"
    envelope = await publish_one(sub, content=blob, headers={"content-type": octet})
    assert envelope["datacontenttype"] == octet
    assert base64.b64decode(envelope["data_base64"]) == blob
    assert "data" not in envelope
    # Anything else is a string.
    envelope = await publish_one(sub, content=b"<a>1</a>", headers={"content-type": "text/xml"})
    assert envelope["datacontenttype"] == "text/xml"
    assert envelope["data"] == "<a>1</a>"


async def test_cloudevent_metadata_overrides(sub: Pair) -> None:
    params = [
        ("metadata.cloudevent.id", "my-id"),
        ("metadata.cloudevent.id", "second-id"),  # repeated: the first value wins (§0)
        ("metadata.cloudevent.type", "my.type"),
        ("metadata.cloudevent.source", "my-source"),
        ("metadata.cloudevent.subject", "my-subject"),
    ]
    envelope = await publish_one(sub, json={"a": 1}, params=params)
    assert envelope["id"] == "my-id"
    assert envelope["type"] == "my.type"
    assert envelope["source"] == "my-source"
    assert envelope["subject"] == "my-subject"
    assert envelope["data"] == {"a": 1}
    assert envelope["topic"] == "t"


async def test_incoming_traceparent_keeps_its_trace_id(sub: Pair) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = f"00-{trace_id}-00f067aa0ba902b7-01"
    envelope = await publish_one(sub, json={"a": 1}, headers={"traceparent": incoming})
    assert TRACEPARENT.match(envelope["traceparent"]), envelope
    assert envelope["traceparent"].split("-")[1] == trace_id
    assert envelope["traceid"] == envelope["traceparent"]


async def test_caller_cloudevent_is_completed(sub: Pair) -> None:
    minimal = {
        "id": "ce-1",
        "specversion": "1.0",
        "datacontenttype": JSON,
        "data": {"x": 1},
        "topic": "wrong-topic",
        "pubsubname": "wrong-pubsub",
    }
    envelope = await publish_one(
        sub, content=json.dumps(minimal).encode(), headers={"content-type": CLOUDEVENTS}
    )
    assert envelope["id"] == "ce-1"
    assert envelope["topic"] == "t"
    assert envelope["pubsubname"] == "pubsub"
    assert envelope["source"] == "myapp"
    assert envelope["type"] == "com.dapr.event.sent"
    assert envelope["data"] == {"x": 1}
    parse_time(envelope["time"])
    assert TRACEPARENT.match(envelope["traceparent"]), envelope

    full = {
        "id": "ce-2",
        "specversion": "1.0",
        "source": "caller",
        "type": "caller.type",
        "time": "2024-01-02T03:04:05Z",
        "datacontenttype": "text/plain",
        "data": "hi",
    }
    envelope = await publish_one(
        sub, content=json.dumps(full).encode(), headers={"content-type": CLOUDEVENTS}
    )
    assert envelope["id"] == "ce-2"
    assert envelope["source"] == "caller"
    assert envelope["type"] == "caller.type"
    assert envelope["time"] == "2024-01-02T03:04:05Z"
    assert envelope["data"] == "hi"
    assert (envelope["topic"], envelope["pubsubname"]) == ("t", "pubsub")


async def test_raw_payload(sub: Pair) -> None:
    raw = b'{"not": "wrapped"}'
    params = {"metadata.rawPayload": "true"}
    envelope = await publish_one(
        sub, "raw", content=raw, headers={"content-type": JSON}, params=params
    )
    assert sub[1].received[-1].path == "/raw"
    assert base64.b64decode(envelope["data_base64"]) == raw
    assert envelope["datacontenttype"] == "application/octet-stream"
    assert envelope["id"]
    assert (envelope["topic"], envelope["pubsubname"]) == ("raw", "pubsub")
    assert "data" not in envelope


async def test_topic_may_contain_slashes(sub: Pair) -> None:
    envelope = await publish_one(sub, "a/b/c", json={"deep": True})
    assert sub[1].received[-1].path == "/abc"
    assert envelope["topic"] == "a/b/c"
    assert envelope["data"] == {"deep": True}


async def test_ttl_adds_expiration(sub: Pair) -> None:
    params = {"metadata.ttlInSeconds": "120"}
    envelope = await publish_one(sub, json={"a": 1}, params=params)
    expires = parse_time(envelope["expiration"])
    left = expires - datetime.now(UTC)
    assert timedelta(seconds=90) < left <= timedelta(seconds=121), envelope["expiration"]


@pytest.mark.parametrize("prefix", ["/v1.0-alpha1", "/v1.0"])
async def test_bulk_publish_delivers_every_entry(sub: Pair, prefix: str) -> None:
    dapr, app = sub
    entries = [
        {"entryId": "1", "event": {"n": 1}, "contentType": JSON},
        {"entryId": "2", "event": "two", "contentType": "text/plain"},
        {
            "entryId": "3",
            "event": {"specversion": "1.0", "id": "ce-3", "source": "s", "type": "x", "data": 3},
            "contentType": CLOUDEVENTS,
        },
    ]
    r = await dapr.post(f"{prefix}/publish/bulk/pubsub/bulk", json=entries)
    assert r.status_code == 204, r.text
    received = await app.wait_for(3)
    assert {event.path for event in received} == {"/bulk"}
    by_data = {json.dumps(event.body["data"]): event.body for event in received}
    assert set(by_data) == {'{"n": 1}', '"two"', "3"}
    one, two, three = by_data['{"n": 1}'], by_data['"two"'], by_data["3"]
    envelopes = [one, two, three]
    assert one["datacontenttype"] == JSON
    assert two["datacontenttype"] == "text/plain"
    assert three["id"] == "ce-3"
    for envelope in envelopes:
        assert (envelope["topic"], envelope["pubsubname"]) == ("bulk", "pubsub")
        assert envelope["specversion"] == "1.0"
    assert one["source"] == two["source"] == "myapp"
    assert one["id"] != two["id"]


# --- what Redis stores ---------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_stream_entry_holds_the_envelope(redis_url: str, tmp_path: Path) -> None:
    resources = write_components(tmp_path / "components", "redis", redis_address=redis_url)
    config = sidecar_config(tmp_path, resources)
    async with running_sidecar(config) as sidecar, client_for(sidecar) as dapr:
        r = await dapr.post("/v1.0/publish/pubsub/orders", json={"id": 1})
        assert r.status_code == 204, r.text
    async with raw_redis(redis_url) as client:
        entries = await client.xrange("orders")
    assert len(entries) == 1
    fields = entries[0][1]
    assert set(fields) == {b"data", b"metadata"}
    envelope = json.loads(fields[b"data"])
    assert envelope["data"] == {"id": 1}
    assert envelope["source"] == "myapp"
    assert envelope["topic"] == "orders"
    assert envelope["datacontenttype"] == JSON
    assert json.loads(fields[b"metadata"]) == {}


@pytest.mark.redis
async def test_redis_subscribed_sidecar_stops_promptly(redis_url: str, tmp_path: Path) -> None:
    """Start and stop a sidecar whose app subscribes on Redis a few times; stop must not hang.

    Regression guard: stopping cancels the XREADGROUP loop, and that cancellation must end it.
    """
    resources = write_components(tmp_path / "components", "redis", redis_address=redis_url)
    for cycle in range(12):
        app = FakeApp(subscriptions=[SUBSCRIPTIONS[0]])
        try:
            async with asyncio.timeout(10), running_app(app):
                config = sidecar_config(tmp_path, resources, app=app)
                async with running_sidecar(config) as sidecar, client_for(sidecar) as dapr:
                    assert (await dapr.get("/v1.0/healthz")).status_code == 204
        except TimeoutError:
            pytest.fail(f"start/stop cycle {cycle}: the sidecar did not stop within 10 s")
