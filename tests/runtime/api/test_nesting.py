"""Deeply nested JSON bodies, on both engines: Go's decoder refuses more than 10000 levels of
arrays and objects (``invalid character '[' exceeded max depth``), daca more than
:data:`~daca.runtime.godecode.MAX_DEPTH` (500; docs/runtime.md). Each endpoint answers as it
answers any body it cannot decode; a published ``application/json`` body that does not decode
is published as a string."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from daca.runtime.godecode import MAX_DEPTH
from tests.engines import Engine, per_engine
from tests.runtime.api.helpers import app_with_sidecar, assert_error
from tests.runtime.harness import FakeApp, write_components

HOSTILE = 100_000
GO_DEPTH = 10_000
TOO_DEEP = "invalid character '[' exceeded max depth"
OBJECTS_TOO_DEEP = "invalid character '{' exceeded max depth"
DESERIALIZING = "failed deserializing HTTP body: "
JSON = {"content-type": "application/json"}
CLOUDEVENTS = {"content-type": "application/cloudevents+json"}

Pair = tuple[httpx.AsyncClient, FakeApp]


def arrays(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


@pytest_asyncio.fixture
async def sub(engine: Engine, tmp_path: Path) -> AsyncIterator[Pair]:
    resources = write_components(tmp_path / "components", "memory")
    subscriptions = [{"pubsubname": "pubsub", "topic": "t", "route": "/t"}]
    async with app_with_sidecar(engine, tmp_path, resources, subscriptions) as pair:
        yield pair


def error_metadata(response: httpx.Response) -> dict[str, Any]:
    info = next(d for d in response.json()["details"] if d["@type"].endswith("ErrorInfo"))
    metadata: dict[str, Any] = info["metadata"]
    return metadata


async def test_a_json_publish_too_deep_to_decode_is_published_as_text(sub: Pair) -> None:
    dapr, app = sub
    bodies = [arrays(HOSTILE), '{"a":' * HOSTILE + "1" + "}" * HOSTILE]
    for body in bodies:
        r = await dapr.post("/v1.0/publish/pubsub/t", content=body, headers=JSON)
        assert r.status_code == 204, r.text
    received = await app.wait_for(2)
    assert [event.body["data"] for event in received] == bodies
    assert {event.body["datacontenttype"] for event in received} == {"application/json"}


async def test_a_cloudevent_too_deep_to_decode(sub: Pair) -> None:
    dapr, app = sub
    data = '{"id":"1","source":"s","specversion":"1.0","type":"t","data":' + arrays(HOSTILE) + "}"
    for body in (arrays(HOSTILE), data):
        r = await dapr.post("/v1.0/publish/pubsub/t", content=body, headers=CLOUDEVENTS)
        assert_error(r, 500, "ERR_PUBSUB_CLOUD_EVENTS_SER", "cannot create cloudevent")
        assert error_metadata(r) == {"appID": "myapp", "error": TOO_DEEP}
    assert app.received == []


async def test_a_bulk_publish_too_deep_to_decode(sub: Pair) -> None:
    dapr, app = sub
    entry = '[{"entryId":"1","contentType":"application/json","event":' + arrays(HOSTILE) + "}]"
    for body in (arrays(HOSTILE), entry):
        r = await dapr.post("/v1.0-alpha1/publish/bulk/pubsub/t", content=body, headers=JSON)
        message = f"error when unmarshaling the request for topic t pubsub pubsub: {TOO_DEEP}"
        assert_error(r, 400, "ERR_PUBSUB_EVENTS_SER", message)
        assert error_metadata(r) == {"appID": "myapp"}
    assert app.received == []


async def test_state_bodies_too_deep_to_decode(sub: Pair) -> None:
    dapr, _ = sub
    deep = arrays(HOSTILE)
    objects = '{"a":' * HOSTILE + "1" + "}" * HOSTILE
    upsert = '{"operations":[{"operation":"upsert","request":{"key":"k","value":' + deep + "}}]}"
    cases = [
        ("/v1.0/state/statestore", deep, TOO_DEEP),
        ("/v1.0/state/statestore", '[{"key":"k","value":' + deep + "}]", TOO_DEEP),
        ("/v1.0/state/statestore", '[{"key":"k","value":' + objects + "}]", OBJECTS_TOO_DEEP),
        ("/v1.0/state/statestore/bulk", deep, DESERIALIZING + TOO_DEEP),
        ("/v1.0/state/statestore/transaction", deep, DESERIALIZING + TOO_DEEP),
        ("/v1.0/state/statestore/transaction", upsert, DESERIALIZING + TOO_DEEP),
    ]  # fmt: skip
    for path, body, message in cases:
        r = await dapr.post(path, content=body, headers=JSON)
        assert_error(r, 400, "ERR_MALFORMED_REQUEST")
        assert r.json() == {"errorCode": "ERR_MALFORMED_REQUEST", "message": message}
    assert (await dapr.get("/v1.0/state/statestore/k")).status_code == 204


async def test_a_syntax_error_before_the_limit_is_reported_first(sub: Pair) -> None:
    dapr, _ = sub
    body = "[" * 10 + "x" + arrays(HOSTILE)
    r = await dapr.post("/v1.0/state/statestore", content=body, headers=JSON)
    assert_error(r, 400, "ERR_MALFORMED_REQUEST")
    assert "exceeded max depth" not in r.json()["message"]  # Go's and Python's words differ


async def test_the_nesting_limits(engine: Engine, sub: Pair) -> None:
    """The deepest value both read, the one daprd reads and daca does not, and Go's limit."""
    dapr, _ = sub

    async def save(depth: int) -> httpx.Response:
        value = arrays(depth - 2)  # the body adds two levels: [{...}]
        return await dapr.post("/v1.0/state/statestore", content=f'[{{"key":"k","value":{value}}}]')

    r = await save(MAX_DEPTH)
    assert r.status_code == 204, r.text
    assert (await dapr.get("/v1.0/state/statestore/k")).content == arrays(MAX_DEPTH - 2).encode()
    r = await save(MAX_DEPTH + 1)
    assert r.status_code == per_engine(engine, daca=400, daprd=204), r.text
    r = await save(GO_DEPTH)
    assert r.status_code == per_engine(engine, daca=400, daprd=204), r.text
    r = await save(GO_DEPTH + 1)
    assert r.json() == {"errorCode": "ERR_MALFORMED_REQUEST", "message": TOO_DEEP}


async def test_a_publish_at_the_limit_makes_a_cloudevent_past_it(engine: Engine, sub: Pair) -> None:
    """The envelope adds a level: data nested to the limit is published, and its CloudEvent is
    unreadable to the delivery (daprd: the same at 10000 levels; without a dead-letter topic
    the event is dropped)."""
    dapr, app = sub
    deep = arrays(MAX_DEPTH)
    r = await dapr.post("/v1.0/publish/pubsub/t", content=deep, headers=JSON)
    assert r.status_code == 204, r.text
    r = await dapr.post("/v1.0/publish/pubsub/t", json="after")
    assert r.status_code == 204, r.text
    expected = per_engine(engine, daca=["after"], daprd=[json.loads(deep), "after"])
    received = await app.wait_for(len(expected))
    assert sorted((event.body["data"] for event in received), key=str) == sorted(expected, key=str)
