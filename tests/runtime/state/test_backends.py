"""Behaviour particular to one backend: Redis's wire layout and ETags, SQLite's file and table."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio

from daca.runtime.errors import ComponentError, ETagInvalidError, ETagMismatchError, StoreError
from daca.runtime.net import free_port
from daca.runtime.pubsub.redis import RedisPubSub
from daca.runtime.redis_server import BundledRedis
from daca.runtime.registry import start_components
from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import DeleteRequest, SetRequest
from daca.runtime.state.memory import MemoryStateStore
from daca.runtime.state.redis import RedisStateStore
from daca.runtime.state.sqlite import SqliteStateStore


def spec(kind: str, **metadata: str) -> ComponentSpec:
    return ComponentSpec(
        name="statestore", type=f"state.{kind}", version="v1", metadata=metadata, source="test.yaml"
    )


# --- Redis ---------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    host, port = redis_url.split(":")
    client = redis.asyncio.Redis(host=host, port=int(port))
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStateStore]:
    store = RedisStateStore.from_component(spec("redis", redisHost=redis_url))
    await store.start()
    yield store
    await store.close()


@pytest.mark.redis
async def test_redis_stores_a_hash_with_data_and_version(
    redis_store: RedisStateStore, raw_redis: redis.asyncio.Redis
) -> None:
    await redis_store.set(SetRequest("app||k", b'{"a":1}'))
    assert await raw_redis.hgetall("app||k") == {b"data": b'{"a":1}', b"version": b"1"}
    await redis_store.set(SetRequest("app||k", b"2", etag="1"))
    assert await raw_redis.hget("app||k", "version") == b"2"
    item = await redis_store.get("app||k")
    assert item is not None
    assert item.etag == "2"


@pytest.mark.redis
async def test_redis_reads_a_legacy_string_value(
    redis_store: RedisStateStore, raw_redis: redis.asyncio.Redis
) -> None:
    await raw_redis.set("old", b'"legacy"')
    item = await redis_store.get("old")
    assert item is not None
    assert (item.value, item.etag) == (b'"legacy"', "0")
    await redis_store.set(SetRequest("old", b'"new"', etag="0"))
    assert await raw_redis.hgetall("old") == {b"data": b'"new"', b"version": b"1"}


@pytest.mark.redis
async def test_redis_non_integer_etag_is_invalid_on_writes(redis_store: RedisStateStore) -> None:
    await redis_store.set(SetRequest("k", b"1"))
    with pytest.raises(ETagInvalidError, match=r'strconv\.Atoi: parsing "not-a-number"'):
        await redis_store.set(SetRequest("k", b"2", etag="not-a-number"))
    with pytest.raises(ETagMismatchError, match="failed to delete k"):  # compared as text
        await redis_store.delete(DeleteRequest("k", etag="W/1"))
    with pytest.raises(ETagMismatchError):
        await redis_store.delete(DeleteRequest("k", etag="01"))  # "1" as a write would read it
    await redis_store.set(SetRequest("k", b"1", etag="+01"))
    with pytest.raises(ETagInvalidError):
        await redis_store.transact([SetRequest("new", b"1"), SetRequest("k", b"3", etag="x")])
    assert await redis_store.get("new") is None
    item = await redis_store.get("k")
    assert item is not None
    assert item.value == b"1"


@pytest.mark.redis
async def test_redis_ttl_uses_expire_and_persist(
    redis_store: RedisStateStore, raw_redis: redis.asyncio.Redis
) -> None:
    await redis_store.set(SetRequest("k", b"1", ttl_seconds=100))
    assert 0 < await raw_redis.ttl("k") <= 100
    await redis_store.set(SetRequest("k", b"2", ttl_seconds=0))
    assert await raw_redis.ttl("k") == -1


@pytest.mark.redis
async def test_redis_component_ttl_is_the_default(
    redis_url: str, raw_redis: redis.asyncio.Redis
) -> None:
    store = RedisStateStore.from_component(spec("redis", redisHost=redis_url, ttlInSeconds="50"))
    await store.start()
    try:
        await store.set(SetRequest("k", b"1"))
        assert 0 < await raw_redis.ttl("k") <= 50
        await store.set(SetRequest("k", b"1", ttl_seconds=-1))
        assert await raw_redis.ttl("k") == -1
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_leaves_an_injected_client_open(
    redis_url: str, raw_redis: redis.asyncio.Redis
) -> None:
    store = RedisStateStore.from_component(spec("redis", redisHost=redis_url), client=raw_redis)
    await store.start()
    await store.set(SetRequest("k", b"1"))
    await store.close()
    assert await raw_redis.ping()
    assert await raw_redis.hget("k", "data") == b"1"


@pytest.mark.parametrize("backend", [RedisStateStore, RedisPubSub])
def test_redis_refuses_an_injected_client_that_decodes(backend: Any) -> None:
    decoding = redis.asyncio.Redis(port=1, decode_responses=True)
    kind = "state" if backend is RedisStateStore else "pubsub"
    component = ComponentSpec("c", f"{kind}.redis", "v1", {"redisHost": "h:1"}, "test.yaml")
    with pytest.raises(ValueError, match="decode_responses=False"):
        backend.from_component(component, client=decoding)


async def test_redis_unreachable_is_a_component_error_naming_the_field() -> None:
    address = f"127.0.0.1:{free_port()}"
    store = RedisStateStore.from_component(spec("redis", redisHost=address))
    with pytest.raises(ComponentError) as caught:
        await store.start()
    message = str(caught.value)
    for part in ("test.yaml", "'statestore'", "'redisHost'", address, "cannot connect"):
        assert part in message
    with pytest.raises(RuntimeError, match="before start"):
        await store.get("k")


def test_redis_missing_host_is_a_component_error() -> None:
    with pytest.raises(ComponentError, match="'redisHost' is required"):
        RedisStateStore.from_component(spec("redis"))


@pytest.mark.redis
async def test_redis_lost_connection_is_a_store_error(tmp_path: Path) -> None:
    server = BundledRedis(free_port(), tmp_path / "redis", persistent=False)
    await server.astart()
    store = RedisStateStore.from_component(spec("redis", redisHost=server.address))
    try:
        await store.start()
        await store.set(SetRequest("k", b"1"))
        server.kill()
        with pytest.raises(StoreError) as caught:
            await store.get("k")
        assert caught.value.__cause__ is not None
    finally:
        await store.close()
        await server.astop()


# --- SQLite --------------------------------------------------------------------------------------


def sqlite_store(path: Path, **metadata: str) -> SqliteStateStore:
    return SqliteStateStore.from_component(spec("sqlite", connectionString=str(path), **metadata))


async def test_sqlite_is_durable_across_close_and_reopen(tmp_path: Path) -> None:
    first = sqlite_store(tmp_path / "state.db")
    await first.start()
    await first.set(SetRequest("k", b'{"kept": true}'))
    etag = (await first.get("k") or pytest.fail("missing")).etag
    await first.close()
    second = sqlite_store(tmp_path / "state.db")
    await second.start()
    try:
        item = await second.get("k")
        assert item is not None
        assert (item.value, item.etag) == (b'{"kept": true}', etag)
    finally:
        await second.close()


async def test_sqlite_uses_daprds_table_layout(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "state.db", tableName="dapr_state")
    await store.start()
    await store.set(SetRequest("text", b'"caf\xc3\xa9"'))
    await store.set(SetRequest("binary", b"\xff\x00"))
    await store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(dapr_state)")]
        rows = dict(conn.execute("SELECT key, value || ':' || is_binary FROM dapr_state"))
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert columns == ["key", "value", "is_binary", "etag", "expiration_time", "update_time"]
    assert rows == {"text": '"café":0', "binary": "/wA=:1"}
    assert mode == "wal"


async def test_sqlite_shared_memory_uri(tmp_path: Path) -> None:
    store = SqliteStateStore.from_component(
        spec("sqlite", connectionString="file::memory:?cache=shared")
    )
    await store.start()
    try:
        await store.set(SetRequest("k", b"1"))
        assert await store.get("k") is not None
    finally:
        await store.close()


async def test_sqlite_cleanup_removes_expired_rows(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "state.db", cleanupInterval="50ms")
    await store.start()
    try:
        await store.set(SetRequest("short", b"1", ttl_seconds=1))
        await store.set(SetRequest("kept", b"1"))
        async with asyncio.timeout(10):
            while True:
                if await asyncio.to_thread(count_rows, tmp_path / "state.db") == 1:
                    break
                await asyncio.sleep(0.05)
    finally:
        await store.close()


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM state").fetchone()[0])
    finally:
        conn.close()


def test_sqlite_missing_connection_string_is_a_component_error() -> None:
    with pytest.raises(ComponentError) as caught:
        SqliteStateStore.from_component(spec("sqlite"))
    message = str(caught.value)
    for part in ("test.yaml", "'statestore'", "'connectionString'", "is required"):
        assert part in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("tableName", "state; DROP TABLE x"), ("busyTimeout", "soon"), ("disableWAL", "maybe")],
)
def test_sqlite_bad_metadata_is_a_component_error(field: str, value: str) -> None:
    with pytest.raises(ComponentError, match=f"'{field}'"):
        SqliteStateStore.from_component(spec("sqlite", connectionString="x.db", **{field: value}))


async def test_sqlite_unopenable_database_is_a_component_error(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "no" / "such" / "dir" / "state.db")
    with pytest.raises(ComponentError, match="'connectionString'"):
        await store.start()


# --- in-memory -----------------------------------------------------------------------------------


async def test_memory_reports_ttl_expire_time_in_rfc3339() -> None:
    store = MemoryStateStore.from_component(spec("in-memory"))
    await store.start()
    await store.set(SetRequest("k", b"1", ttl_seconds=60))
    item = await store.get("k")
    assert item is not None
    assert item.metadata["ttlExpireTime"][10] == "T"
    assert item.metadata["ttlExpireTime"].endswith("Z")


# --- every backend -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["in-memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]
)
async def test_actor_state_store_adds_the_capability_on_every_backend(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    extra: dict[str, str] = {}
    if kind == "sqlite":
        extra = {"connectionString": str(tmp_path / "state.db")}
    elif kind == "redis":
        extra = {"redisHost": request.getfixturevalue("redis_url")}
    actors = {**extra, "actorStateStore": "true"}
    specs = [
        ComponentSpec("actors", f"state.{kind}", "v1", actors, "test.yaml"),
        ComponentSpec("plain", f"state.{kind}", "v1", extra, "test.yaml"),
    ]
    components = await start_components(specs, "app", None)
    try:
        assert components.capabilities("actors") == ["ACTOR", "ETAG", "TRANSACTIONAL", "TTL"]
        assert components.capabilities("plain") == ["ETAG", "TRANSACTIONAL", "TTL"]
    finally:
        await components.close()


async def test_a_bad_actor_state_store_flag_fails_at_start() -> None:
    bad = spec("in-memory", actorStateStore="maybe")
    with pytest.raises(ComponentError, match="'actorStateStore' must be a boolean"):
        await start_components([bad], "app", None)


def test_each_backend_reads_ttl_in_seconds_as_its_daprd_store(tmp_path: Path) -> None:
    memory = MemoryStateStore.from_component(spec("in-memory"))
    sqlite = sqlite_store(tmp_path / "state.db")
    redis_store = RedisStateStore.from_component(spec("redis", redisHost="127.0.0.1:1"))
    assert (memory.parse_ttl("-5"), redis_store.parse_ttl("-5")) == (0, -5)
    assert sqlite.parse_ttl("-1") == -1
    bad = {
        memory: 'strconv.Atoi: parsing "x": invalid syntax',
        sqlite: "error parsing TTL: incorrect value for metadata 'ttlInSeconds': "
        'strconv.ParseInt: parsing "x": invalid syntax',
        redis_store: "failed to parse ttl from metadata: "
        'strconv.ParseInt: parsing "x": invalid syntax',
    }
    for store, message in bad.items():
        with pytest.raises(StoreError) as caught:
            store.parse_ttl("x")
        assert str(caught.value) == message
    for raw in ("-5", str(2**31)):
        with pytest.raises(StoreError, match="'ttlInSeconds': must be -1 or greater"):
            sqlite.parse_ttl(raw)
    with pytest.raises(StoreError, match='parsing "99999999999999999999": value out of range'):
        memory.parse_ttl("99999999999999999999")
