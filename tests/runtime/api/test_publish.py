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

from tests.engines import Engine, per_engine
from tests.runtime.api.helpers import (
    JSON,
    app_with_sidecar,
    assert_error,
    client_for,
    raw_redis,
    sidecar_config,
)
from tests.runtime.harness import FakeApp, running_app, write_components

SUBSCRIPTIONS: list[dict[str, Any]] = [
    {"pubsubname": "pubsub", "topic": "t", "route": "/t"},
    {"pubsubname": "pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"}},
    {"pubsubname": "pubsub", "topic": "a/b/c", "route": "/abc"},
    {"pubsubname": "pubsub", "topic": "bulk", "route": "/bulk"},
]
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
CLOUDEVENTS = "application/cloudevents+json"
OCTET = "application/octet-stream"
JSON_TYPE = {"content-type": JSON}

Pair = tuple[httpx.AsyncClient, FakeApp]


@pytest_asyncio.fixture
async def sub(engine: Engine, resources: Path, tmp_path: Path) -> AsyncIterator[Pair]:
    """A sidecar (app-id ``myapp``) on ``engine`` whose app subscribes to :data:`SUBSCRIPTIONS`."""
    async with app_with_sidecar(engine, tmp_path, resources, SUBSCRIPTIONS) as pair:
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

RESOURCE_INFO = "type.googleapis.com/google.rpc.ResourceInfo"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def error_info(response: httpx.Response) -> dict[str, Any]:
    """The ErrorInfo detail of daprd's error body (pkg/api/errors/pubsub.go)."""
    infos = [d for d in response.json()["details"] if d["@type"] == ERROR_INFO]
    assert len(infos) == 1, response.json()
    assert infos[0]["domain"] == "dapr.io"
    info: dict[str, Any] = infos[0]
    return info


def resource_info(response: httpx.Response) -> dict[str, Any] | None:
    infos = [d for d in response.json()["details"] if d["@type"] == RESOURCE_INFO]
    return infos[0] if infos else None


async def test_publish_errors(dapr: httpx.AsyncClient) -> None:
    r = await dapr.post("/v1.0/publish/nope/t", json={"a": 1})
    assert_error(r, 404, "ERR_PUBSUB_NOT_FOUND")
    assert r.json()["message"] == "pubsub nope is not found"
    assert error_info(r) == {
        "@type": ERROR_INFO,
        "domain": "dapr.io",
        "metadata": {},
        "reason": "DAPR_PUBSUB_NOT_FOUND",
    }
    assert resource_info(r) is None

    r = await dapr.post("/v1.0/publish/pubsub/t?metadata.rawPayload=notabool", json={"a": 1})
    assert_error(r, 400, "ERR_PUBSUB_REQUEST_METADATA")
    message = (
        "failed deserializing metadata. Error: rawPayload value must be a valid boolean: "
        "actual is 'notabool'"
    )
    assert r.json()["message"] == message
    assert error_info(r)["metadata"] == {"rawPayload": "notabool"}
    assert error_info(r)["reason"] == "DAPR_PUBSUB_METADATA_DESERIALIZATION"
    assert resource_info(r) == {
        "@type": RESOURCE_INFO,
        "description": message,
        "owner": "",
        "resource_name": "pubsub",
        "resource_type": "pubsub",
    }

    # daprd routes the cleaned path (no trailing "/"): with no topic left it is no publish
    # route at all, and falls through to invocation by header, which needs dapr-app-id.
    for path in ("/v1.0/publish/pubsub/", "/v1.0/publish/pubsub", "/v1.0/publish//t"):
        r = await dapr.post(path, json={"a": 1})
        assert_error(r, 404, "ERR_DIRECT_INVOKE", "failed getting app id")

    r = await dapr.post(
        "/v1.0/publish/pubsub/t", content=b"{not json", headers={"content-type": CLOUDEVENTS}
    )
    assert_error(r, 500, "ERR_PUBSUB_CLOUD_EVENTS_SER")
    assert r.json()["message"] == "cannot create cloudevent"
    info = error_info(r)
    assert info["reason"] == "DAPR_PUBSUB_CLOUD_EVENT_CREATION"
    assert info["metadata"]["appID"] == "myapp"
    assert info["metadata"]["error"]  # the parser's own words differ: Go's and Python's
    r = await dapr.post(
        "/v1.0/publish/pubsub/t", content=b"[1]", headers={"content-type": CLOUDEVENTS}
    )
    assert_error(r, 500, "ERR_PUBSUB_CLOUD_EVENTS_SER")  # a CloudEvent must be an object

    # Metadata that cannot be read as a TTL is not an error: daprd ignores it.
    r = await dapr.post("/v1.0/publish/pubsub/t", params={"metadata.ttlInSeconds": "x"}, json=1)
    assert r.status_code == 204, r.text
    r = await dapr.put("/v1.0/publish/pubsub/t", json={"a": 1})  # PUT works as POST
    assert r.status_code == 204, r.text
    assert r.content == b""


def events_ser(response: httpx.Response, reason: str, message: str | None = None) -> None:
    assert_error(response, 400, "ERR_PUBSUB_EVENTS_SER", message)
    assert error_info(response)["reason"] == reason
    assert error_info(response)["metadata"]["appID"] == "myapp"


async def test_bulk_publish_errors(dapr: httpx.AsyncClient) -> None:
    event = {"event": {"a": 1}, "contentType": JSON}
    no_id = "error marshaling events to bytes for topic t pubsub pubsub. error: entryId is "
    mismatch = (
        "error when marshalling cloud event envelope for topic t pubsub pubsub: "
        "error: mismatch between contentType and event"
    )
    unmarshal = "error when unmarshaling the request for topic t pubsub pubsub: "
    for prefix in ("/v1.0-alpha1", "/v1.0"):
        url = f"{prefix}/publish/bulk/pubsub/t"
        for body in (
            [event],
            [{"entryId": "", **event}],
            [{"entryId": "1", **event}, {"entryId": "1", **event}],
        ):
            r = await dapr.post(url, json=body)
            events_ser(r, "DAPR_PUBSUB_MARSHAL_EVENTS", no_id + "duplicated or not present")
        # The event must fit its contentType; a missing contentType fits nothing.
        mismatched: tuple[list[Any], ...] = (
            [{"entryId": "1", "event": {"a": 1}}],
            [{"entryId": "1", "event": {"a": 1}, "contentType": "text/plain"}],
            [{"entryId": "1", "event": 1, "contentType": "application/octet-stream"}],
            [None],
        )
        for body in mismatched:
            r = await dapr.post(url, json=body)
            events_ser(r, "DAPR_PUBSUB_MARSHAL_ENVELOPE", mismatch)
        r = await dapr.post(url, json=[{"entryId": "1", "event": "!", "contentType": OCTET}])
        events_ser(r, "DAPR_PUBSUB_MARSHAL_ENVELOPE", "unable to decode base64")
        field = "json: cannot unmarshal number into Go struct field bulkPublishMessageEntry."
        text = '"event": "x", "contentType": "text/plain"'
        bad_json = {
            b"": "EOF",
            b"[{": "unexpected EOF",
            b'{"a": 1}': "json: cannot unmarshal object into Go value of type "
            "[]http.bulkPublishMessageEntry",
            f'[{{"entryId": 1, {text}}}]'.encode(): field + "entryId of type string",
            f'[{{"entryId": "1", {text}, "metadata": {{"a": 1}}}}]'.encode(): field
            + "metadata of type string",
            f'[{{"entryId": "1", {text}, "metadata": ["a"]}}]'.encode(): "json: cannot unmarshal"
            " array into Go struct field bulkPublishMessageEntry.metadata"
            " of type map[string]string",
            b'[{"entryId": "1", "event": "x", "contentType": 1}]': field
            + "contentType of type string",
            b"[1]": "json: cannot unmarshal number into Go value of type "
            "http.bulkPublishMessageEntry",
            b'"x"': "json: cannot unmarshal string into Go value of type "
            "[]http.bulkPublishMessageEntry",
        }
        for content, problem in bad_json.items():
            r = await dapr.post(url, content=content, headers=JSON_TYPE)
            events_ser(r, "DAPR_PUBSUB_UNMARSHAL_EVENTS", unmarshal + problem)
        r = await dapr.post(url, json=[{"entryId": "1", "event": "x", "contentType": CLOUDEVENTS}])
        assert_error(r, 500, "ERR_PUBSUB_CLOUD_EVENTS_SER", "cannot create cloudevent")
        r = await dapr.post(f"{prefix}/publish/bulk/nope/t", json=[{"entryId": "1", **event}])
        assert_error(r, 404, "ERR_PUBSUB_NOT_FOUND", "pubsub nope is not found")
        # Request-level metadata is checked before the body is even read (onBulkPublish).
        r = await dapr.post(url, params={"metadata.rawPayload": "notabool"}, content=b"[{")
        assert_error(r, 400, "ERR_PUBSUB_REQUEST_METADATA")
        # An empty list, or null, publishes nothing and succeeds; so does a list followed by
        # anything (Go's decoder reads the first JSON value only). Keys match in any case.
        for content in (
            b"[]",
            b"null",
            b'[{"EntryID": "1", "Event": "x", "ContentType": "text/plain"}] x',
        ):
            r = await dapr.post(url, content=content, headers=JSON_TYPE)
            assert r.status_code == 204, (content, r.text)


# --- the envelope --------------------------------------------------------------------------------

EMPTY_TRACEPARENT = "00-00000000000000000000000000000000-0000000000000000-00"


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
    # No incoming traceparent, no tracing configured: daprd writes empty trace fields ...
    assert (envelope["traceid"], envelope["traceparent"], envelope["tracestate"]) == ("", "", "")
    sent = parse_time(envelope["time"])
    assert abs(datetime.now(UTC) - sent) < timedelta(seconds=30)
    for absent in ("data_base64", "subject", "expiration"):
        assert absent not in envelope, envelope
    delivered = sub[1].received[-1]
    assert delivered.path == "/t"
    assert delivered.headers["content-type"] == CLOUDEVENTS
    assert delivered.headers["pubsubname"] == "pubsub"
    # ... and sends the app the traceparent of an empty span.
    assert delivered.headers["traceparent"] == EMPTY_TRACEPARENT
    assert "tracestate" not in delivered.headers
    again = await publish_one(sub, json={"order": 8})
    assert again["id"] != envelope["id"]


async def test_data_follows_the_content_type(sub: Pair) -> None:
    # No Content-Type at all: text/plain, and data is the body as a string.
    envelope = await publish_one(sub, content=b"plain words")
    assert envelope["datacontenttype"] == "text/plain"
    assert envelope["data"] == "plain words"
    # JSON with parameters, or in capitals, is still parsed.
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        envelope = await publish_one(
            sub, content=b'{"a": [1, 2]}', headers={"content-type": content_type}
        )
        assert envelope["datacontenttype"] == content_type
        assert envelope["data"] == {"a": [1, 2]}
    # Only application/json is JSON: not text/json, not +json, not "application/json ;".
    for content_type in ("text/json", "application/problem+json", "application/json ; x=1"):
        envelope = await publish_one(
            sub, content=b'{"a": 1}', headers={"content-type": content_type}
        )
        assert envelope["data"] == '{"a": 1}', content_type
    # Invalid JSON labelled application/json is not an error: data is the string. Go reads the
    # first JSON value and ignores what follows it, unless that cuts a number short.
    bodies = {
        b"{not json": "{not json",
        b'{"a": 1} tail': {"a": 1},
        b"12tail": 12,
        b"1.x": "1.x",
        b"NaN": "NaN",
    }
    for body, data in bodies.items():
        envelope = await publish_one(sub, content=body, headers={"content-type": JSON})
        assert envelope["datacontenttype"] == JSON
        assert envelope["data"] == data, body
    # Binary data goes to data_base64 (and so does a protobuf CloudEvent).
    blob = bytes(range(256))
    for content_type in (OCTET, "application/cloudevents+protobuf"):
        envelope = await publish_one(sub, content=blob, headers={"content-type": content_type})
        assert envelope["datacontenttype"] == content_type
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
    # Keys match in any case; empty overrides fall back to the defaults (a new id, "Dapr").
    params = [
        ("metadata.CloudEvent.Type", "any.case"),
        ("metadata.cloudevent.id", ""),
        ("metadata.cloudevent.source", ""),
        ("metadata.cloudevent.subject", ""),
    ]
    envelope = await publish_one(sub, json={"a": 1}, params=params)
    assert envelope["type"] == "any.case"
    assert uuid.UUID(envelope["id"]).version == 4
    assert envelope["source"] == "Dapr"
    assert "subject" not in envelope
    # A traceid override sets both trace fields; a traceparent override wins over it.
    envelope = await publish_one(sub, content=b"x", params={"metadata.cloudevent.traceid": "T1"})
    assert (envelope["traceid"], envelope["traceparent"]) == ("T1", "T1")
    params = [
        ("metadata.cloudevent.traceid", "T1"),
        ("metadata.cloudevent.traceparent", "T2"),
        ("metadata.cloudevent.tracestate", "k=v"),
    ]
    envelope = await publish_one(sub, content=b"x", params=params)
    assert (envelope["traceid"], envelope["traceparent"], envelope["tracestate"]) == (
        "T2",
        "T2",
        "k=v",
    )


async def test_incoming_traceparent_is_passed_on(sub: Pair) -> None:
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {"traceparent": incoming, "tracestate": "congo=t61rcWkgMzE"}
    envelope = await publish_one(sub, json={"a": 1}, headers=headers)
    # daprd without a tracing configuration starts no span of its own: unchanged.
    assert envelope["traceparent"] == envelope["traceid"] == incoming
    assert envelope["tracestate"] == "congo=t61rcWkgMzE"
    assert sub[1].received[-1].headers["traceparent"] == incoming
    assert "tracestate" not in sub[1].received[-1].headers
    # Read and written back as daprd does: version 00, the first flags byte, OWS trimmed ...
    trace = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
    headers = {"traceparent": f"01-{trace}-0300-future", "tracestate": "a=1 ,, b=2"}
    envelope = await publish_one(sub, json={"a": 1}, headers=headers)
    assert envelope["traceparent"] == f"00-{trace}-03"
    assert envelope["tracestate"] == "a=1,b=2"
    # ... an invalid tracestate is dropped, an invalid traceparent is no trace at all.
    headers = {"traceparent": f"00-{trace}-00", "tracestate": "A=1"}
    envelope = await publish_one(sub, json={"a": 1}, headers=headers)
    assert (envelope["traceparent"], envelope["tracestate"]) == (f"00-{trace}-00", "")
    for invalid in (f"00-{trace.upper()}-01", f"00-{'0' * 32}-00f067aa0ba902b7-01", "garbage"):
        envelope = await publish_one(sub, json={"a": 1}, headers={"traceparent": invalid})
        assert (envelope["traceparent"], envelope["tracestate"]) == ("", ""), invalid
        assert sub[1].received[-1].headers["traceparent"] == EMPTY_TRACEPARENT


async def test_publish_metadata_arrives_as_headers(sub: Pair) -> None:
    params = {"metadata.foo": "bar", "metadata.grpc-x": "1", "metadata.Connection": "close"}
    await publish_one(sub, json={"a": 1}, params=params)
    headers = sub[1].received[-1].headers
    assert headers["foo"] == "bar"
    assert headers["dapr-grpc-x"] == "1"  # grpc-* is renamed
    assert "grpc-x" not in headers
    assert headers["pubsubname"] == "pubsub"
    assert headers.get("connection") != "close"  # hop-by-hop: never passed on
    # Metadata that cannot be a header makes the event undeliverable (daprd's HTTP client fails
    # every attempt): the app never sees it.
    dapr, app = sub
    for params in ({"metadata.not a header": "x"}, {"metadata.bad-value": "a\x01b"}):
        before = len(app.received)
        r = await dapr.post("/v1.0/publish/pubsub/t", json={"lost": True}, params=params)
        assert r.status_code == 204, r.text
        envelope = await publish_one(sub, json={"kept": True})
        assert envelope["data"] == {"kept": True}
        with pytest.raises(TimeoutError):
            await app.wait_for(before + 2, timeout=0.5)


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
    assert envelope["source"] == "Dapr"  # not the app-id: FromCloudEvent's default
    assert envelope["type"] == "com.dapr.event.sent"
    assert envelope["data"] == {"x": 1}
    parse_time(envelope["time"])
    assert (envelope["traceid"], envelope["traceparent"], envelope["tracestate"]) == ("", "", "")

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

    # Only a missing (or null) source, type or specversion is filled in; the trace fields only
    # when there is no traceid; no id is invented; anything after the object is ignored.
    odd = b'{"source": "", "type": null, "traceid": "mine"} trailing'
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    envelope = await publish_one(
        sub, content=odd, headers={"content-type": CLOUDEVENTS, "traceparent": incoming}
    )
    assert envelope["source"] == ""
    assert envelope["type"] == "com.dapr.event.sent"
    assert envelope["traceid"] == "mine"
    assert "traceparent" not in envelope
    assert "id" not in envelope
    assert sub[1].received[-1].headers["traceparent"] == EMPTY_TRACEPARENT  # "mine" is no W3C
    theirs = {"id": "ce-3", "traceparent": "stale"}
    envelope = await publish_one(
        sub,
        content=json.dumps(theirs).encode(),
        headers={"content-type": f"{CLOUDEVENTS}; charset=utf-8", "traceparent": incoming},
    )
    assert envelope["traceid"] == envelope["traceparent"] == incoming


async def test_raw_payload(sub: Pair) -> None:
    raw = b'{"not": "wrapped"}'
    params = {"metadata.rawPayload": "true"}
    envelope = await publish_one(
        sub, "raw", content=raw, headers={"content-type": JSON}, params=params
    )
    assert sub[1].received[-1].path == "/raw"
    assert base64.b64decode(envelope["data_base64"]) == raw
    assert envelope["datacontenttype"] == "application/octet-stream"
    assert uuid.UUID(envelope["id"]).version == 4
    assert envelope["source"] == "Dapr"
    assert envelope["type"] == "com.dapr.event.sent"
    assert (envelope["topic"], envelope["pubsubname"]) == ("raw", "pubsub")
    assert "data" not in envelope


async def test_raw_published_json_object_reads_as_an_event(sub: Pair) -> None:
    """Only the subscription's rawPayload counts: to a subscriber that does not set it, a raw
    message is a CloudEvent if it parses as a JSON object (and is unreadable otherwise)."""
    body = {"id": "raw-1", "data": "d", "custom": True}
    params = {"metadata.rawPayload": "1"}
    envelope = await publish_one(sub, content=json.dumps(body).encode(), params=params)
    assert envelope == body


async def test_topic_may_contain_slashes(sub: Pair) -> None:
    envelope = await publish_one(sub, "a/b/c", json={"deep": True})
    assert sub[1].received[-1].path == "/abc"
    assert envelope["topic"] == "a/b/c"
    assert envelope["data"] == {"deep": True}
    # The path is cleaned first, as daprd's router does: "a//b/c/" is "a/b/c".
    envelope = await publish_one(sub, "a//b/c/", json={"deep": 2})
    assert envelope["topic"] == "a/b/c"


async def test_ttl_adds_expiration(sub: Pair) -> None:
    # Seconds (ttlInSeconds, or ttl) or a Go duration, keys in any case; for a CloudEvent too.
    cases = [
        ({"metadata.ttlInSeconds": "120"}, b'{"a": 1}', JSON, 120),
        ({"metadata.TTL": "2m"}, b'{"a": 1}', JSON, 120),
        ({"metadata.ttl": "1h30m"}, b'{"id": "c", "data": 1}', CLOUDEVENTS, 5400),
    ]
    for params, body, content_type, seconds in cases:
        envelope = await publish_one(
            sub, content=body, params=params, headers={"content-type": content_type}
        )
        expires = parse_time(envelope["expiration"])
        assert envelope["expiration"].endswith("Z")
        left = expires - datetime.now(UTC)
        assert timedelta(seconds=seconds - 30) < left <= timedelta(seconds=seconds + 1), params
    # What is not a TTL is ignored (no error, no expiration): text, 0 or less, an empty "ttl"
    # (which hides ttlInSeconds: "ttl" is looked up first).
    for params in (
        {"metadata.ttlInSeconds": "soon"},
        {"metadata.ttlInSeconds": "-5"},
        {"metadata.ttl": "", "metadata.ttlInSeconds": "60"},
    ):
        envelope = await publish_one(sub, json={"a": 1}, params=params)
        assert "expiration" not in envelope, params
    # A zero or negative Go duration expires at once: the event is dropped, never delivered.
    dapr, app = sub
    for ttl in ("0", "-5s"):
        before = len(app.received)
        r = await dapr.post(
            "/v1.0/publish/pubsub/t", json={"gone": ttl}, params={"metadata.ttl": ttl}
        )
        assert r.status_code == 204, r.text
        envelope = await publish_one(sub, json={"kept": ttl})
        with pytest.raises(TimeoutError):
            await app.wait_for(before + 2, timeout=0.5)
        assert envelope["data"] == {"kept": ttl}


@pytest.mark.parametrize("prefix", ["/v1.0-alpha1", "/v1.0"])
async def test_bulk_publish_delivers_every_entry(engine: Engine, sub: Pair, prefix: str) -> None:
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
    octet = [
        {"entryId": "b", "event": base64.b64encode(b"\x00\xff").decode(), "contentType": OCTET}
    ]
    r = await dapr.post(f"{prefix}/publish/bulk/pubsub/bulk", json=octet)
    assert r.status_code == 204, r.text
    (binary,) = (await app.wait_for(4))[3:]
    assert base64.b64decode(binary.body["data_base64"]) == b"\x00\xff"  # decoded, re-encoded
    # Documented difference: daprd decodes a bulk event's numbers into float64.
    big = [{"entryId": "n", "event": {"big": 12345678901234567890}, "contentType": JSON}]
    r = await dapr.post(f"{prefix}/publish/bulk/pubsub/bulk", json=big)
    assert r.status_code == 204, r.text
    (number,) = (await app.wait_for(5))[4:]
    expected = per_engine(engine, daca=12345678901234567890, daprd=12345678901234567000)
    assert number.body["data"] == {"big": expected}


async def test_bulk_request_metadata_reaches_only_entries_with_metadata(sub: Pair) -> None:
    """daprd merges the request's metadata into an entry's only when the entry has some: an
    entry without ``metadata`` gets no overrides and no TTL from the request."""
    dapr, app = sub
    entries = [
        {"entryId": "bare", "event": "a", "contentType": "text/plain"},
        {"entryId": "empty", "event": "b", "contentType": "text/plain", "metadata": {}},
        {"entryId": "own", "event": "c", "contentType": "text/plain", "metadata": {"ttl": "1h"}},
    ]
    params = {"metadata.cloudevent.type": "from.request", "metadata.ttlInSeconds": "120"}
    r = await dapr.post("/v1.0-alpha1/publish/bulk/pubsub/bulk", json=entries, params=params)
    assert r.status_code == 204, r.text
    by_data = {event.body["data"]: event.body for event in await app.wait_for(3)}
    assert by_data["a"]["type"] == "com.dapr.event.sent"
    assert "expiration" not in by_data["a"]
    assert by_data["b"]["type"] == by_data["c"]["type"] == "from.request"
    left = parse_time(by_data["c"]["expiration"]) - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)  # the entry's own "ttl" first
    assert "expiration" in by_data["b"]


async def test_lone_surrogates_are_published_as_go_decodes_them(sub: Pair) -> None:
    """A JSON ``"\\ud800"`` is no character: Go's decoder makes it U+FFFD."""
    dapr, app = sub
    body = b'{"a":"x\\ud800y"}'
    r = await dapr.post("/v1.0/publish/pubsub/t", content=body, headers=JSON_TYPE)
    assert r.status_code == 204, r.text
    entry = b'[{"entryId":"1","contentType":"application/json","event":' + body + b"}]"
    r = await dapr.post("/v1.0-alpha1/publish/bulk/pubsub/bulk", content=entry)
    assert r.status_code == 204, r.text
    received = await app.wait_for(2)
    assert [event.body["data"] for event in received] == [{"a": "x\ufffdy"}] * 2


# --- what Redis stores ---------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_stream_entry_holds_the_envelope(
    engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    resources = write_components(tmp_path / "components", "redis", redis_address=redis_url)
    config = sidecar_config(tmp_path, resources)
    async with engine.sidecar(config) as sidecar, client_for(sidecar) as dapr:
        r = await dapr.post("/v1.0/publish/pubsub/orders", json={"id": 1, "html": "<&>"})
        assert r.status_code == 204, r.text
        r = await dapr.post("/v1.0/publish/pubsub/orders", json=2, params={"metadata.b": "<2>"})
        assert r.status_code == 204, r.text
        bulk = [
            {"entryId": "1", "event": 3, "contentType": JSON},
            {"entryId": "2", "event": 4, "contentType": JSON, "metadata": {"m": "x"}},
        ]
        r = await dapr.post("/v1.0/publish/bulk/pubsub/orders", json=bulk)
        assert r.status_code == 204, r.text
    async with raw_redis(redis_url) as client:
        stream = await client.xrange("orders")
        assert stream is not None
    entries: list[Any] = [fields for _, fields in stream]
    assert len(entries) == 4
    first, second = entries[:2]
    assert set(first) == {b"data", b"metadata"}
    envelope = json.loads(first[b"data"])
    assert envelope["data"] == {"id": 1, "html": "<&>"}
    assert envelope["source"] == "myapp"
    assert envelope["topic"] == "orders"
    assert envelope["datacontenttype"] == JSON
    # Written as Go's json.Marshal writes: compact, keys sorted, <, > and & escaped.
    assert list(envelope) == sorted(envelope)
    assert b" " not in first[b"data"] and b"\\u003c\\u0026\\u003e" in first[b"data"]
    assert first[b"metadata"] == b"{}"
    assert second[b"metadata"] == b'{"b":"\\u003c2\\u003e"}'
    # A bulk entry without metadata is stored without a metadata field (the entries of one bulk
    # request are published concurrently: in any order).
    bulk_entries = {json.loads(fields[b"data"])["data"]: fields for fields in entries[2:]}
    assert set(bulk_entries[3]) == {b"data"}
    assert bulk_entries[4][b"metadata"] == b'{"m":"x"}'


@pytest.mark.redis
async def test_redis_subscribed_sidecar_stops_promptly(
    engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    """Start and stop a sidecar whose app subscribes on Redis a few times; stop must not hang.

    Regression guard: stopping cancels the XREADGROUP loop, and that cancellation must end it.
    """
    resources = write_components(tmp_path / "components", "redis", redis_address=redis_url)
    for cycle in range(12):
        app = FakeApp(subscriptions=[SUBSCRIPTIONS[0]])
        try:
            async with asyncio.timeout(10), running_app(app):
                config = sidecar_config(tmp_path, resources, app=app)
                async with engine.sidecar(config) as sidecar, client_for(sidecar) as dapr:
                    assert (await dapr.get("/v1.0/healthz")).status_code == 204
        except TimeoutError:
            pytest.fail(f"start/stop cycle {cycle}: the sidecar did not stop within 10 s")
