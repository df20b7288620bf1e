"""daca and real daprd on ONE Redis: each reads, updates and takes over what the other wrote.

The runtime promises to be wire-compatible with daprd's Redis components (``docs/runtime.md``,
"Redis"): state is a hash ``<app-id>||<key>`` with ``data`` and ``version`` (the ETag); pub/sub is
one stream per topic with ``data`` (the CloudEvent) and ``metadata`` entries, read by the consumer
group (and consumer) ``consumerID`` or the app-id. Every test here runs a daca sidecar and a daprd
sidecar in the same test against the same Redis, and asserts what each engine answers; where they
differ the assertion names the engine and the reason (a row of the differences table, or an
undocumented difference reported with the test).

Timing settings: daprd 1.18.2 (components-contrib v1.18.3) reads ``processingTimeout`` as a Go
duration (``500ms``) or a bare number of milliseconds, but ``redeliverInterval`` ONLY as a bare
number (a duration string is silently ignored and the default 15 s applies; see
``test_redeliver_interval_duration_string``). The components here therefore give
``redeliverInterval`` in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daca.realdapr.daprd import DaprdSidecar, LoopbackNetwork
from daca.runtime.config import SidecarConfig
from tests.engines import APP_IDS, DacaEngine, DaprdEngine, Engine
from tests.runtime.api.helpers import client_for, eventually, raw_redis
from tests.runtime.harness import FakeApp, Received, component_yaml, running_app

pytestmark = [pytest.mark.daprd, pytest.mark.redis]

STATE = "/v1.0/state/statestore"
APP_ID = "myapp"
PUBLISHER = "publisher"
SUBSCRIBER = "subscriber"
TOPIC = "orders"
ROUTE = "/orders"

#: processingTimeout as a Go duration string, redeliverInterval as milliseconds: both engines
#: honour both (daprd ignores a duration string for redeliverInterval, see the module docstring).
FAST_PUBSUB = {"processingTimeout": "500ms", "redeliverInterval": "200"}

#: A ``redis.asyncio.Redis`` (``raw_redis``); its stubs type every reply as a union.
RawRedis = Any

DIRECTIONS = [
    pytest.param(("daca", "daprd"), id="daca-writes-daprd-reads"),
    pytest.param(("daprd", "daca"), id="daprd-writes-daca-reads"),
]
#: (publishing engine, delivering engine)
PUB_DIRECTIONS = [
    pytest.param(("daca", "daprd"), id="daca-publishes-daprd-delivers"),
    pytest.param(("daprd", "daca"), id="daprd-publishes-daca-delivers"),
]


# --- set-up --------------------------------------------------------------------------------------


@dataclass
class Engines:
    daca: DacaEngine
    daprd: DaprdEngine

    def __getitem__(self, name: str) -> Engine:
        return self.daca if name == "daca" else self.daprd


@pytest.fixture
def engines(tmp_path: Path, daprd_binary: Path) -> Engines:
    network = LoopbackNetwork(tmp_path / "daprd-network", APP_IDS)
    return Engines(DacaEngine(), DaprdEngine(daprd_binary, network, tmp_path / "daprd-logs"))


def write_resources(directory: Path, redis_address: str, **pubsub: str) -> Path:
    """``statestore`` (state.redis) and ``pubsub`` (pubsub.redis, ``pubsub`` metadata added)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = component_yaml("statestore", "state.redis", {"redisHost": redis_address})
    bus = component_yaml("pubsub", "pubsub.redis", {"redisHost": redis_address, **pubsub})
    (directory / "components.yaml").write_text(state + "---\n" + bus)
    return directory


@pytest.fixture
def resources(tmp_path: Path, redis_url: str) -> Path:
    return write_resources(tmp_path / "components", redis_url, **FAST_PUBSUB)


def sidecar_config(
    tmp_path: Path, resources: Path, app_id: str = APP_ID, app: FakeApp | None = None
) -> SidecarConfig:
    return SidecarConfig(
        app_id=app_id,
        app_port=app.port if app is not None else None,
        http_port=0,
        resources_paths=(resources,),
        home=tmp_path / "home",
        bundle_redis=False,
    )


@dataclass
class Both:
    """A client for a daca and a daprd sidecar of the same app-id, and the raw Redis."""

    clients: dict[str, httpx.AsyncClient]
    redis: RawRedis

    def __getitem__(self, engine: str) -> httpx.AsyncClient:
        return self.clients[engine]


@pytest_asyncio.fixture
async def both(
    engines: Engines, resources: Path, tmp_path: Path, redis_url: str
) -> AsyncIterator[Both]:
    """daca and daprd side by side, both ``myapp`` (so both use the key prefix ``myapp||``)."""
    config = sidecar_config(tmp_path, resources)
    async with (
        engines.daca.sidecar(config) as daca,
        engines.daprd.sidecar(config) as daprd,
        client_for(daca) as daca_client,
        client_for(daprd) as daprd_client,
        raw_redis(redis_url) as client,
    ):
        yield Both({"daca": daca_client, "daprd": daprd_client}, client)


async def save(dapr: httpx.AsyncClient, *items: dict[str, Any], **params: str) -> httpx.Response:
    return await dapr.post(STATE, json=list(items), params=params)


async def get(dapr: httpx.AsyncClient, key: str) -> httpx.Response:
    return await dapr.get(f"{STATE}/{key}")


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.json()["errorCode"] == code, response.text


# --- state: values, ETags, both ways -------------------------------------------------------------

#: Values whose JSON text both engines store byte for byte alike (at most one key per object:
#: daprd re-marshals objects in Go's random map order, see test_object_key_order_...).
VALUES: dict[str, Any] = {
    "object": {"order": {"items": ["a", True, None, {"sku": 7}]}},
    "string": "DeathStar",
    "integer": 42,
    "negative": -17,
    "small-float": 2.5,
    "unicode": 'héllo wörld 世界 🎉 <&> "quoted" \\ \n\t \u2028 \u0001',
    "array": [1, "two", None, {"three": 3}],
    "bool": False,
    "null": None,
}


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_value_and_etag_read_and_updated_through_the_other(
    both: Both, direction: tuple[str, str]
) -> None:
    writer, reader = both[direction[0]], both[direction[1]]
    for name, value in VALUES.items():
        key = f"v-{name}"
        assert (await save(writer, {"key": key, "value": value})).status_code == 204
        written = await get(writer, key)
        assert written.status_code == 200, (name, written.text)
        read = await get(reader, key)
        assert read.status_code == 200, (name, read.text)
        assert read.content == written.content, name
        assert read.json() == value, name
        assert read.headers["etag"] == written.headers["etag"] == "1", name
        assert read.headers["content-type"].startswith("application/json"), name

        # An ETag-guarded write through the reader with the writer's ETag succeeds ...
        update = {"key": key, "value": {"updated": name}, "etag": read.headers["etag"]}
        assert (await save(reader, update)).status_code == 204, name
        again = await get(writer, key)
        assert again.json() == {"updated": name}
        assert again.headers["etag"] == "2", name
        # ... and the now stale ETag is refused by both, the writer too.
        for client in (writer, reader):
            stale = {"key": key, "value": "stale", "etag": "1"}
            assert_error(await save(client, stale), 409, "ERR_STATE_SAVE")
        assert (await get(reader, key)).json() == {"updated": name}
        # The writer updates with the reader's new ETag.
        final = {"key": key, "value": value, "etag": "2"}
        assert (await save(writer, final)).status_code == 204, name
        assert (await get(reader, key)).headers["etag"] == "3", name


async def test_same_write_same_hash_from_either_engine(both: Both) -> None:
    """HGETALL after the same writes through each engine: identical, field for field."""
    stored: dict[str, list[dict[bytes, bytes]]] = {}
    for engine in ("daca", "daprd"):
        dapr, key = both[engine], f"layout-{engine}"
        snapshots = []
        for step, value in enumerate(VALUES.values()):
            item: dict[str, Any] = {"key": key, "value": value}
            if step:
                item["etag"] = str(step)
            assert (await save(dapr, item)).status_code == 204, (engine, step)
            assert await both.redis.type(f"{APP_ID}||{key}") == b"hash"
            snapshots.append(await both.redis.hgetall(f"{APP_ID}||{key}"))
        assert (await dapr.delete(f"{STATE}/{key}", headers={"if-match": "99"})).status_code == 409
        snapshots.append(await both.redis.hgetall(f"{APP_ID}||{key}"))
        assert (await dapr.delete(f"{STATE}/{key}")).status_code == 204
        assert await both.redis.exists(f"{APP_ID}||{key}") == 0
        stored[engine] = snapshots
    assert stored["daca"] == stored["daprd"]
    assert set(stored["daca"][0]) == {b"data", b"version"}
    assert [s[b"version"] for s in stored["daca"]] == [
        str(n).encode() for n in [*range(1, len(VALUES) + 1), len(VALUES)]
    ]
    assert stored["daca"][1][b"data"] == b'"DeathStar"'
    assert stored["daca"][5][b"data"] == (
        '"héllo wörld 世界 🎉 <&> \\"quoted\\" \\\\ \\n\\t \u2028 \\u0001"'.encode()
    )


async def test_first_write_save_leaves_a_first_write_field_only_on_daprd(both: Both) -> None:
    """UNDOCUMENTED DIFFERENCE (reported): daprd's set script adds ``first-write: 0`` to the hash
    of a first-write save; daca (``state/redis.py``, ``_TRANSACT_LUA``) writes only ``data`` and
    ``version``. Both engines read each other's hash either way."""
    first_write = {"options": {"concurrency": "first-write"}}
    for engine in ("daca", "daprd"):
        item = {"key": f"fw-{engine}", "value": {"n": 1}, **first_write}
        assert (await save(both[engine], item)).status_code == 204
    assert await both.redis.hgetall(f"{APP_ID}||fw-daca") == {b"data": b'{"n":1}', b"version": b"1"}
    assert await both.redis.hgetall(f"{APP_ID}||fw-daprd") == {
        b"data": b'{"n":1}',
        b"version": b"1",
        b"first-write": b"0",
    }
    for reader in ("daca", "daprd"):
        for writer in ("daca", "daprd"):
            r = await get(both[reader], f"fw-{writer}")
            assert (r.json(), r.headers["etag"]) == ({"n": 1}, "1"), (reader, writer)
    # The extra field does not disturb daca's ETag check on daprd's hash, nor the reverse.
    update = {"key": "fw-daprd", "value": 2, "etag": "1"}
    assert (await save(both["daca"], update)).status_code == 204
    assert (await get(both["daprd"], "fw-daprd")).headers["etag"] == "2"
    update = {"key": "fw-daca", "value": 2, "etag": "1"}
    assert (await save(both["daprd"], update)).status_code == 204
    assert (await get(both["daca"], "fw-daca")).headers["etag"] == "2"


async def test_numbers_daprd_rounds_daca_keeps(both: Both) -> None:
    """UNDOCUMENTED DIFFERENCE (reported): daprd's Redis store re-marshals the value with jsoniter
    ``ConfigFastest`` (floats to 6 decimals, integers through float64, ``1.0`` as ``1``); daca
    (``api/state.py``, ``_set_request``) keeps Python's full-precision JSON text. Either engine
    reads back exactly the bytes the other stored."""
    numbers = {
        "pi": (3.14159265, b"3.14159265", b"3.141593"),
        "one": (1.0, b"1.0", b"1"),
        "big": (12345678901234567890, b"12345678901234567890", b"12345678901234567000"),
        "tiny": (1e-7, b"1e-07", b"0"),
        "micro": (-0.000001234, b"-1.234e-06", b"-0.000001"),
    }
    for name, (value, daca_text, daprd_text) in numbers.items():
        for engine, expected in (("daca", daca_text), ("daprd", daprd_text)):
            key = f"n-{name}-{engine}"
            assert (await save(both[engine], {"key": key, "value": value})).status_code == 204
            assert await both.redis.hget(f"{APP_ID}||{key}", "data") == expected, (name, engine)
            for reader in ("daca", "daprd"):
                assert (await get(both[reader], key)).content == expected, (name, engine, reader)


async def test_object_key_order_daprd_random_daca_kept(both: Both) -> None:
    """daprd stores an object's members in Go map order (random per write); daca in request order.
    JSON objects are unordered, so both engines read the same value (reported as a note)."""
    value = {letter: index for index, letter in enumerate("qwertyuiop")}
    in_order = json.dumps(value, separators=(",", ":")).encode()
    seen: set[bytes] = set()
    for attempt in range(6):
        assert (await save(both["daprd"], {"key": "o-daprd", "value": value})).status_code == 204
        seen.add(await both.redis.hget(f"{APP_ID}||o-daprd", "data") or b"")
        assert (await save(both["daca"], {"key": "o-daca", "value": value})).status_code == 204
        assert await both.redis.hget(f"{APP_ID}||o-daca", "data") == in_order, attempt
    assert len(seen) > 1, seen  # 6 writes of 10 members in the same order: odds 1 in 10!^5
    for reader in ("daca", "daprd"):
        for writer in ("daca", "daprd"):
            assert (await get(both[reader], f"o-{writer}")).json() == value, (reader, writer)


async def test_legacy_plain_string_value(both: Both) -> None:
    """Documented row "An old plain-string Redis value has no ETag": daprd answers no ETag header,
    daca ETag "0"; both return the stored text."""
    await both.redis.set(f"{APP_ID}||legacy", b'"old"')
    daprd, daca = await get(both["daprd"], "legacy"), await get(both["daca"], "legacy")
    assert daprd.content == daca.content == b'"old"'
    assert "etag" not in daprd.headers
    assert daca.headers["etag"] == "0"
    # daca's write with ETag "0" turns it into a hash, which daprd then reads with its version.
    r = await save(both["daca"], {"key": "legacy", "value": "new", "etag": "0"})
    assert r.status_code == 204, r.text
    assert (await get(both["daprd"], "legacy")).headers["etag"] == "1"
    assert await both.redis.type(f"{APP_ID}||legacy") == b"hash"


# --- state: delete, bulk, transactions, TTL ------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_delete_through_the_other(both: Both, direction: tuple[str, str]) -> None:
    writer, other = both[direction[0]], both[direction[1]]
    for key in ("d-etag", "d-plain"):
        assert (await save(writer, {"key": key, "value": {"k": key}})).status_code == 204
    etag = (await get(writer, "d-etag")).headers["etag"]
    r = await other.delete(f"{STATE}/d-etag", headers={"if-match": str(int(etag) + 1)})
    assert_error(r, 409, "ERR_STATE_DELETE")
    assert (await get(writer, "d-etag")).json() == {"k": "d-etag"}
    assert (await other.delete(f"{STATE}/d-etag", headers={"if-match": etag})).status_code == 204
    assert (await other.delete(f"{STATE}/d-plain")).status_code == 204
    for key in ("d-etag", "d-plain"):
        gone = await get(writer, key)
        assert gone.status_code == 204, key
        assert "etag" not in gone.headers
        assert await both.redis.exists(f"{APP_ID}||{key}") == 0


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_bulk_get_through_the_other(both: Both, direction: tuple[str, str]) -> None:
    writer, reader = both[direction[0]], both[direction[1]]
    items: list[dict[str, Any]] = [{"key": "b1", "value": {"n": 1}}, {"key": "b2", "value": "two"}]
    assert (await save(writer, *items)).status_code == 204
    assert (await save(writer, {"key": "b2", "value": "two", "etag": "1"})).status_code == 204
    body = {"keys": ["b1", "missing", "b2"]}
    from_writer = await writer.post(f"{STATE}/bulk", json=body)
    from_reader = await reader.post(f"{STATE}/bulk", json=body)
    assert from_reader.status_code == from_writer.status_code == 200
    assert (
        from_reader.json()
        == from_writer.json()
        == [
            {"key": "b1", "data": {"n": 1}, "etag": "1"},
            {"key": "missing"},
            {"key": "b2", "data": "two", "etag": "2"},
        ]
    )


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_transaction_read_by_the_other(both: Both, direction: tuple[str, str]) -> None:
    writer_name, reader_name = direction
    writer, reader = both[writer_name], both[reader_name]
    assert (await save(reader, {"key": "t-old", "value": "old"})).status_code == 204
    assert (await save(reader, {"key": "t-upd", "value": "v1"})).status_code == 204
    operations = [
        {"operation": "upsert", "request": {"key": "t-new", "value": {"made": writer_name}}},
        {"operation": "upsert", "request": {"key": "t-upd", "value": "v2", "etag": "1"}},
        {"operation": "delete", "request": {"key": "t-old", "etag": "1"}},
    ]
    r = await writer.post(f"{STATE}/transaction", json={"operations": operations})
    assert r.status_code == 204, r.text
    new, upd = await get(reader, "t-new"), await get(reader, "t-upd")
    assert (new.json(), new.headers["etag"]) == ({"made": writer_name}, "1")
    assert (upd.json(), upd.headers["etag"]) == ("v2", "2")
    assert (await get(reader, "t-old")).status_code == 204
    assert await both.redis.hgetall(f"{APP_ID}||t-new") == {
        b"data": json.dumps({"made": writer_name}).replace(" ", "").encode(),
        b"version": b"1",
    }

    # A transaction with one stale ETag: 500 ERR_STATE_TRANSACTION from both engines. Documented
    # row "A Redis transaction is MULTI/EXEC ...": daprd keeps the operations that passed, daca
    # applies nothing.
    operations = [
        {"operation": "upsert", "request": {"key": "t-new", "value": "ok", "etag": "1"}},
        {"operation": "upsert", "request": {"key": "t-upd", "value": "stale", "etag": "1"}},
    ]
    r = await writer.post(f"{STATE}/transaction", json={"operations": operations})
    assert_error(r, 500, "ERR_STATE_TRANSACTION")
    new = await get(reader, "t-new")
    if writer_name == "daprd":
        assert (new.json(), new.headers["etag"]) == ("ok", "2")
    else:
        assert (new.json(), new.headers["etag"]) == ({"made": writer_name}, "1")
    assert (await get(reader, "t-upd")).json() == "v2"


def _ttl_header(response: httpx.Response) -> datetime | None:
    raw = response.headers.get("metadata.ttlExpireTime")
    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_ttl_honoured_by_the_other(both: Both, direction: tuple[str, str]) -> None:
    writer_name, reader_name = direction
    writer, reader = both[writer_name], both[reader_name]
    item = {"key": "ttl-item", "value": {"short": True}, "metadata": {"ttlInSeconds": "1"}}
    assert (await save(writer, item)).status_code == 204
    for key, value, seconds in (("ttl-q", 1, "1"), ("ttl-long", 2, "300")):
        r = await save(writer, {"key": key, "value": value}, **{"metadata.ttlInSeconds": seconds})
        assert r.status_code == 204, r.text
    for key, limit in (("ttl-item", 1), ("ttl-q", 1), ("ttl-long", 300)):
        assert 0 < await both.redis.ttl(f"{APP_ID}||{key}") <= limit, key
    read = await get(reader, "ttl-long")
    assert read.json() == 2
    # Neither engine's Redis store reports the expiry (no ``metadata.ttlExpireTime``, unlike
    # state.in-memory), on GET or in a bulk get.
    for name in ("daca", "daprd"):
        response = await get(both[name], "ttl-long")
        assert _ttl_header(response) is None, (name, response.headers)
        assert not [h for h in response.headers if h.lower().startswith("metadata.")], name
        bulk = (await both[name].post(f"{STATE}/bulk", json={"keys": ["ttl-long"]})).json()
        assert bulk == [{"key": "ttl-long", "data": 2, "etag": "1"}], (name, bulk)

    async def expired() -> bool:
        codes = [(await get(reader, key)).status_code for key in ("ttl-item", "ttl-q")]
        return codes == [204, 204]

    await eventually(expired, within=8)
    assert (await get(reader, "ttl-long")).json() == 2

    # A later write without a TTL through the reader: documented row "A Redis write without a
    # TTL keeps an earlier TTL" (daprd) / removes it (daca).
    assert (await save(reader, {"key": "ttl-long", "value": 3})).status_code == 204
    remaining = await both.redis.ttl(f"{APP_ID}||ttl-long")
    if reader_name == "daprd":
        assert 0 < remaining <= 300
    else:
        assert remaining == -1
    # ttlInSeconds -1 removes it on both (PERSIST).
    expiring = {"key": "ttl-long", "value": 4, "metadata": {"ttlInSeconds": "5"}}
    assert (await save(writer, expiring)).status_code == 204
    persisted = {"key": "ttl-long", "value": 5, "metadata": {"ttlInSeconds": "-1"}}
    assert (await save(reader, persisted)).status_code == 204
    assert await both.redis.ttl(f"{APP_ID}||ttl-long") == -1


# --- pub/sub -------------------------------------------------------------------------------------

SUBSCRIPTIONS = [{"pubsubname": "pubsub", "topic": TOPIC, "route": ROUTE}]
PUBLISH = f"/v1.0/publish/pubsub/{TOPIC}"


async def _retry(request: Request, body: Any) -> Response:
    return JSONResponse({"status": "RETRY"})


def subscriber_app(topic: str = TOPIC, **kwargs: Any) -> FakeApp:
    return FakeApp(subscriptions=[{**SUBSCRIPTIONS[0], "topic": topic}], **kwargs)


def deliveries(app: FakeApp) -> list[Received]:
    return [received for received in app.received if received.path == ROUTE]


async def stream_entries(client: RawRedis, topic: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """``XRANGE topic - +``: (entry id, fields)."""
    return list(await client.xrange(topic))


async def stream_events(client: RawRedis, topic: str) -> dict[str, dict[str, Any]]:
    """The CloudEvents in the stream by their ``id``."""
    events = [json.loads(fields[b"data"]) for _, fields in await stream_entries(client, topic)]
    return {event["id"]: event for event in events}


async def pending_count(client: RawRedis, topic: str, group: str) -> int:
    info = await client.xpending(topic, group)
    return int(info["pending"])


async def wait_pending(client: RawRedis, topic: str, group: str, count: int) -> None:
    async def reached() -> bool:
        return await pending_count(client, topic, group) == count

    await eventually(reached, within=10)


@pytest.mark.parametrize("direction", PUB_DIRECTIONS)
async def test_events_published_by_one_delivered_by_the_other(
    engines: Engines, resources: Path, tmp_path: Path, redis_url: str, direction: tuple[str, str]
) -> None:
    publisher_engine, subscriber_engine = direction
    app = subscriber_app()
    async with (
        running_app(app),
        engines[subscriber_engine].sidecar(sidecar_config(tmp_path, resources, SUBSCRIBER, app)),
        engines[publisher_engine].sidecar(sidecar_config(tmp_path, resources, PUBLISHER)) as pub,
        client_for(pub) as publisher,
        raw_redis(redis_url) as client,
    ):
        r = await publisher.post(PUBLISH, json={"order": 1, "note": "wörld"})
        assert r.status_code == 204, r.text
        r = await publisher.post(PUBLISH, content=b"plain", headers={"content-type": "text/plain"})
        assert r.status_code == 204, r.text
        await app.wait_for(2)
        await wait_pending(client, TOPIC, SUBSCRIBER, 0)
        events = await stream_events(client, TOPIC)
    received = deliveries(app)
    assert len(received) == 2, received
    assert {delivery.body["id"] for delivery in received} == set(events)
    for delivery in received:
        assert delivery.body == events[delivery.body["id"]]
        assert delivery.headers["content-type"] == "application/cloudevents+json"
        assert delivery.body["source"] == PUBLISHER
        assert (delivery.body["topic"], delivery.body["pubsubname"]) == (TOPIC, "pubsub")
    data = sorted((d.body["datacontenttype"], d.body["data"]) for d in received)
    assert data == [("application/json", {"order": 1, "note": "wörld"}), ("text/plain", "plain")]


#: Publish requests sent alike through each engine: (params, headers, body).
PUBLISHES: list[tuple[dict[str, str], dict[str, str], bytes]] = [
    ({}, {"content-type": "application/json"}, b'{"order": 1}'),
    ({"metadata.foo": "bar"}, {"content-type": "application/json"}, b'{"order": 2}'),
    ({}, {"content-type": "text/plain"}, b"plain"),
    ({}, {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, b"traced"),
]


async def test_stream_entries_same_from_either_engine(
    engines: Engines, resources: Path, tmp_path: Path, redis_url: str
) -> None:
    """The same publish through each engine: the same stream entry, byte for byte, but for the
    event's ``id``, ``time`` and (here, deliberately different) ``topic``."""
    config = sidecar_config(tmp_path, resources, PUBLISHER)
    entries: dict[str, list[dict[bytes, bytes]]] = {}
    async with (
        engines.daca.sidecar(config) as daca,
        engines.daprd.sidecar(config) as daprd,
        raw_redis(redis_url) as client,
    ):
        for name, sidecar in (("daca", daca), ("daprd", daprd)):
            async with client_for(sidecar) as dapr:
                for params, headers, body in PUBLISHES:
                    r = await dapr.post(
                        f"/v1.0/publish/pubsub/fields-{name}",
                        params=params,
                        headers=headers,
                        content=body,
                    )
                    assert r.status_code == 204, r.text
            entries[name] = [f for _, f in await stream_entries(client, f"fields-{name}")]
    for name in ("daca", "daprd"):
        assert [set(fields) for fields in entries[name]] == [{b"data", b"metadata"}] * 4, name
    incoming = PUBLISHES[3][1]["traceparent"]
    for index, (daca_fields, daprd_fields) in enumerate(
        zip(entries["daca"], entries["daprd"], strict=True)
    ):
        # The metadata entry: the publish metadata as compact JSON, byte for byte.
        metadata = {k.removeprefix("metadata."): v for k, v in PUBLISHES[index][0].items()}
        expected_metadata = json.dumps(metadata, separators=(",", ":")).encode()
        assert daca_fields[b"metadata"] == daprd_fields[b"metadata"] == expected_metadata, index

        daca_event, daprd_event = (
            json.loads(daca_fields[b"data"]),
            json.loads(daprd_fields[b"data"]),
        )
        varying = {"id", "time", "topic"}
        assert {k: v for k, v in daca_event.items() if k not in varying} == {
            k: v for k, v in daprd_event.items() if k not in varying
        }, index
        # Same members in the same (Go's sorted map) order.
        assert list(daca_event) == list(daprd_event) == sorted(daprd_event), index
        for event, engine in ((daca_event, "daca"), (daprd_event, "daprd")):
            assert event["topic"] == f"fields-{engine}"
            assert event["source"] == PUBLISHER
            sent = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
            assert abs(datetime.now(UTC) - sent) < timedelta(seconds=30)
            # Trace context as daprd without a tracing configuration: the caller's traceparent
            # unchanged, "" without one.
            assert event["traceid"] == event["traceparent"] == ("" if index < 3 else incoming)
        # The whole entry is the same bytes once the per-event fields are the same.
        normalised = {**daprd_event, **{k: daca_event[k] for k in varying}}
        assert (
            daca_fields[b"data"]
            == json.dumps(normalised, separators=(",", ":"), ensure_ascii=False).encode()
        ), index


async def group_layout(client: RawRedis, topic: str) -> list[dict[str, Any]]:
    """``XINFO GROUPS`` with each group's ``XINFO CONSUMERS``, without the clocks (idle times)
    and with ``last-delivered-id`` as its position in the stream (entry ids are timestamps)."""
    ids = [entry_id for entry_id, _ in await stream_entries(client, topic)]
    layout = []
    for group in await client.xinfo_groups(topic):
        consumers = await client.xinfo_consumers(topic, group["name"])
        for consumer in consumers:
            assert isinstance(consumer["idle"], int)  # (and "inactive" on Redis >= 7.2)
        last = group["last-delivered-id"]
        layout.append(
            {
                **group,
                "last-delivered-id": ids.index(last) if last in ids else last,
                "consumers-info": [
                    {k: v for k, v in consumer.items() if k not in ("idle", "inactive")}
                    for consumer in consumers
                ],
            }
        )
    return layout


@pytest.mark.parametrize("consumer_id", [None, "wire-group"], ids=["app-id", "consumerID"])
async def test_consumer_group_layout_same_from_either_engine(
    engines: Engines, tmp_path: Path, redis_url: str, consumer_id: str | None
) -> None:
    extra = {"consumerID": consumer_id} if consumer_id else {}
    resources = write_resources(tmp_path / "components", redis_url, **FAST_PUBSUB, **extra)
    group = consumer_id or SUBSCRIBER
    layouts: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    async with raw_redis(redis_url) as client:
        for name in ("daca", "daprd"):
            await client.flushall()
            app = subscriber_app()
            async with (
                running_app(app),
                engines[name].sidecar(sidecar_config(tmp_path, resources, SUBSCRIBER, app)) as sub,
                client_for(sub) as dapr,
            ):

                async def group_created() -> bool:
                    return bool(await client.exists(TOPIC)) and bool(
                        await client.xinfo_groups(TOPIC)
                    )

                await eventually(group_created)
                subscribed = await group_layout(client, TOPIC)
                for n in range(3):
                    assert (await dapr.post(PUBLISH, json={"n": n})).status_code == 204
                await app.wait_for(3)
                await wait_pending(client, TOPIC, group, 0)
                delivered = await group_layout(client, TOPIC)
            layouts[name] = (subscribed, delivered)
    assert layouts["daca"] == layouts["daprd"]
    subscribed, delivered = layouts["daca"]
    # (Redis >= 7 adds entries-read and lag; compared above, not spelled out here.)
    keys = ("name", "consumers", "pending", "last-delivered-id", "consumers-info")
    assert [{k: g[k] for k in keys} for g in subscribed] == [
        {
            "name": group.encode(),
            "consumers": 0,  # a consumer exists once XREADGROUP has handed it an entry
            "pending": 0,
            "last-delivered-id": b"0-0",
            "consumers-info": [],
        }
    ]
    assert [{k: g[k] for k in keys} for g in delivered] == [
        {
            "name": group.encode(),
            "consumers": 1,
            "pending": 0,
            "last-delivered-id": 2,  # the third (last) entry
            "consumers-info": [{"name": group.encode(), "pending": 0}],
        }
    ]


async def pending_entries(client: RawRedis, topic: str, group: str) -> list[Any]:
    return list(await client.xpending_range(topic, group, min="-", max="+", count=10))


async def test_pending_left_by_daca_taken_over_by_daprd(
    engines: Engines, resources: Path, tmp_path: Path, redis_url: str
) -> None:
    """daca leaves a failed event pending (documented row "Redis pub/sub >= 1.17 acknowledges
    ..."); a daprd of the same app-id started later claims it after ``processingTimeout`` and
    delivers it."""
    failing = subscriber_app(answer=_retry)
    async with raw_redis(redis_url) as client:
        async with (
            running_app(failing),
            engines.daca.sidecar(sidecar_config(tmp_path, resources, SUBSCRIBER, failing)) as d,
            client_for(d) as dapr,
        ):
            assert (await dapr.post(PUBLISH, json={"order": "pending"})).status_code == 204
            await failing.wait_for(1)
            await wait_pending(client, TOPIC, SUBSCRIBER, 1)
        left = await pending_entries(client, TOPIC, SUBSCRIBER)
        assert [row["consumer"] for row in left] == [SUBSCRIBER.encode()]
        (event,) = (await stream_events(client, TOPIC)).values()
        assert deliveries(failing)[0].body == event

        succeeding = subscriber_app()
        async with (
            running_app(succeeding),
            engines.daprd.sidecar(sidecar_config(tmp_path, resources, SUBSCRIBER, succeeding)),
        ):
            await succeeding.wait_for(1)
            await wait_pending(client, TOPIC, SUBSCRIBER, 0)
        (taken_over,) = deliveries(succeeding)
        assert taken_over.body == event


async def test_pending_left_by_daprd_taken_over_by_daca(
    engines: Engines, resources: Path, tmp_path: Path, redis_url: str
) -> None:
    """daprd killed while the app handles an event leaves it pending (it acks only after the
    handler answers); a daca of the same app-id claims it after ``processingTimeout``."""
    release = asyncio.Event()

    async def hang(request: Request, body: Any) -> Response:
        await release.wait()
        return JSONResponse({"status": "SUCCESS"})

    hanging = subscriber_app(answer=hang)
    async with raw_redis(redis_url) as client:
        async with running_app(hanging):
            try:
                config = sidecar_config(tmp_path, resources, SUBSCRIBER, hanging)
                async with engines.daprd.sidecar(config) as daprd, client_for(daprd) as dapr:
                    r = await dapr.post(PUBLISH, json={"order": "in-flight"})
                    assert r.status_code == 204, r.text
                    await hanging.wait_for(1)
                    assert isinstance(daprd, DaprdSidecar)
                    daprd.kill()
            finally:
                release.set()
        left = await pending_entries(client, TOPIC, SUBSCRIBER)
        assert [row["consumer"] for row in left] == [SUBSCRIBER.encode()]
        (event,) = (await stream_events(client, TOPIC)).values()
        assert deliveries(hanging)[0].body == event

        succeeding = subscriber_app()
        started = time.monotonic()
        async with (
            running_app(succeeding),
            engines.daca.sidecar(sidecar_config(tmp_path, resources, SUBSCRIBER, succeeding)),
        ):
            await succeeding.wait_for(1)
            await wait_pending(client, TOPIC, SUBSCRIBER, 0)
        (taken_over,) = deliveries(succeeding)
        assert taken_over.body == event
        assert time.monotonic() - started < 10


async def test_failed_event_acked_by_daprd_kept_pending_by_daca(
    engines: Engines, resources: Path, tmp_path: Path, redis_url: str
) -> None:
    """Documented row "Redis pub/sub >= 1.17 acknowledges an event whose delivery failed": with no
    retry policy and no dead-letter topic, daprd XACKs the failed event (so no sidecar, of either
    engine, will ever deliver it again); daca keeps it pending and delivers it again."""
    async with raw_redis(redis_url) as client:
        for name in ("daprd", "daca"):
            await client.flushall()
            failing = subscriber_app(answer=_retry)
            async with (
                running_app(failing),
                engines[name].sidecar(
                    sidecar_config(tmp_path, resources, SUBSCRIBER, failing)
                ) as s,
                client_for(s) as dapr,
            ):
                assert (await dapr.post(PUBLISH, json={"order": name})).status_code == 204
                if name == "daprd":
                    await failing.wait_for(1)
                    await wait_pending(client, TOPIC, SUBSCRIBER, 0)
                    (entry_id,) = [entry_id for entry_id, _ in await stream_entries(client, TOPIC)]
                    (group,) = await client.xinfo_groups(TOPIC)
                    assert group["last-delivered-id"] == entry_id  # read, acked: gone for good
                else:
                    await failing.wait_for(2)  # delivered again after processingTimeout
                    assert await pending_count(client, TOPIC, SUBSCRIBER) == 1
            ids = {delivery.body["id"] for delivery in deliveries(failing)}
            assert ids == set(await stream_events(client, TOPIC)), name


async def test_redeliver_interval_duration_string(
    engines: Engines, tmp_path: Path, redis_url: str
) -> None:
    """``redeliverInterval: "200ms"``: daca reclaims every 200 ms; daprd 1.18.2 ignores a duration
    string there (components-contrib v1.18.3 reads it only as a bare number of milliseconds) and
    reclaims every 15 s, the default. ``processingTimeout: "3s"`` is honoured by both.

    UNDOCUMENTED DIFFERENCE (reported): daca parses the string (pubsub/redis_settings.py,
    RedisPubSubSettings.from_spec / _duration). Note that tests/runtime/harness.py's
    ``write_components`` uses ``"200ms"``, so on daprd its redeliveries take 15 s.

    An entry is left pending by a foreign consumer ("ghost") of the app's group and kept fresh
    until the sidecar is up, so only the periodic reclaim (not the one at subscribe time) can
    take it over.
    """
    resources = write_resources(
        tmp_path / "components", redis_url, processingTimeout="3s", redeliverInterval="200ms"
    )

    async def takeover_after(name: str, app_id: str) -> float:
        topic = f"slow-{name}"
        event = {
            "specversion": "1.0",
            "id": f"ghost-{name}",
            "source": "test",
            "type": "test.ghost",
            "datacontenttype": "application/json",
            "data": {"engine": name},
            "topic": topic,
            "pubsubname": "pubsub",
        }
        async with raw_redis(redis_url) as client:
            await client.xgroup_create(topic, app_id, id="0", mkstream=True)
            entry_id = await client.xadd(topic, {"data": json.dumps(event), "metadata": "{}"})
            await client.xreadgroup(app_id, "ghost", {topic: ">"}, count=1)
            app = subscriber_app(topic)
            async with (
                running_app(app),
                engines[name].sidecar(sidecar_config(tmp_path, resources, app_id, app)),
            ):
                assert not deliveries(app), "taken over at subscribe time: sidecar too slow?"
                fresh = await client.xclaim(
                    topic, app_id, "ghost", min_idle_time=0, message_ids=[entry_id], justid=True
                )
                assert fresh == [entry_id]
                since = time.monotonic()
                await app.wait_for(1, timeout=30)
                elapsed = time.monotonic() - since
            assert deliveries(app)[0].body == event
            return elapsed

    daca, daprd = await asyncio.gather(
        takeover_after("daca", SUBSCRIBER), takeover_after("daprd", "orders-app")
    )
    assert 2.9 <= daca < 7, daca
    assert daprd >= 9, daprd  # the first 15 s tick after subscribing, not 3.2 s
