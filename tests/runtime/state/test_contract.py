"""The state store contract (``daca.runtime.state.base``), run against every backend.

Redis needs the bundled redis-server (``redis`` marker); SQLite uses a file in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from daca.runtime.errors import ETagMismatchError, StoreError
from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import DeleteRequest, SetRequest, StateStore
from daca.runtime.state.memory import MemoryStateStore
from daca.runtime.state.redis import RedisStateStore
from daca.runtime.state.sqlite import SqliteStateStore

StoreFactory = Callable[[], StateStore]
BACKENDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]
DEADLINE = 10.0


def spec(kind: str, **metadata: str) -> ComponentSpec:
    return ComponentSpec(
        name="statestore", type=f"state.{kind}", version="v1", metadata=metadata, source="test.yaml"
    )


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Builds an unstarted store of the parametrised backend."""
    if request.param == "memory":
        return lambda: MemoryStateStore.from_component(spec("in-memory"))
    if request.param == "sqlite":
        db = str(tmp_path / "state.db")
        return lambda: SqliteStateStore.from_component(spec("sqlite", connectionString=db))
    host: str = request.getfixturevalue("redis_url")
    return lambda: RedisStateStore.from_component(spec("redis", redisHost=host))


@pytest_asyncio.fixture
async def store(factory: StoreFactory) -> AsyncIterator[StateStore]:
    started = factory()
    await started.start()
    yield started
    await started.close()


async def etag_of(store: StateStore, key: str) -> str:
    item = await store.get(key)
    assert item is not None
    return item.etag


async def value_of(store: StateStore, key: str) -> bytes | None:
    item = await store.get(key)
    return None if item is None else item.value


async def test_get_missing_key_is_none(store: StateStore) -> None:
    assert await store.get("nope") is None


VALUES = [b'{"name": "D\xc3\xa9j\xc3\xa0", "n": 1}', b'"text"', b"\xff\x00"]


@pytest.mark.parametrize("value", VALUES)
async def test_set_then_get_round_trips_the_bytes(store: StateStore, value: bytes) -> None:
    await store.set(SetRequest("k", value))
    item = await store.get("k")
    assert item is not None
    assert (item.key, item.value) == ("k", value)
    assert item.etag


async def test_etag_changes_on_every_write(store: StateStore) -> None:
    etags = []
    for n in range(3):
        await store.set(SetRequest("k", str(n).encode()))
        etags.append(await etag_of(store, "k"))
    assert len(set(etags)) == 3


async def test_set_with_matching_etag_succeeds(store: StateStore) -> None:
    await store.set(SetRequest("k", b"1"))
    await store.set(SetRequest("k", b"2", etag=await etag_of(store, "k")))
    assert await value_of(store, "k") == b"2"


async def test_set_with_stale_etag_is_a_mismatch(store: StateStore) -> None:
    await store.set(SetRequest("k", b"1"))
    stale = await etag_of(store, "k")
    await store.set(SetRequest("k", b"2"))
    for concurrency in (None, "first-write", "last-write"):
        with pytest.raises(ETagMismatchError):
            await store.set(SetRequest("k", b"3", etag=stale, concurrency=concurrency))
    assert await value_of(store, "k") == b"2"


async def test_delete_with_matching_etag_succeeds(store: StateStore) -> None:
    await store.set(SetRequest("k", b"1"))
    await store.delete(DeleteRequest("k", etag=await etag_of(store, "k")))
    assert await store.get("k") is None


async def test_delete_with_stale_etag_is_a_mismatch(store: StateStore) -> None:
    await store.set(SetRequest("k", b"1"))
    stale = await etag_of(store, "k")
    await store.set(SetRequest("k", b"2"))
    with pytest.raises(ETagMismatchError):
        await store.delete(DeleteRequest("k", etag=stale))
    assert await value_of(store, "k") == b"2"


async def test_etag_for_a_missing_key_is_a_mismatch(store: StateStore) -> None:
    with pytest.raises(ETagMismatchError):
        await store.set(SetRequest("k", b"1", etag="1"))
    with pytest.raises(ETagMismatchError):
        await store.delete(DeleteRequest("k", etag="1"))
    assert await store.get("k") is None


async def test_empty_etag_means_no_etag(store: StateStore) -> None:
    await store.set(SetRequest("k", b"1", etag=""))
    await store.delete(DeleteRequest("k", etag=""))
    assert await store.get("k") is None


async def test_first_write_without_etag_only_creates(store: StateStore) -> None:
    await store.set(SetRequest("k", b"1", concurrency="first-write"))
    with pytest.raises(ETagMismatchError):
        await store.set(SetRequest("k", b"2", concurrency="first-write"))
    etag = await etag_of(store, "k")
    await store.set(SetRequest("k", b"3", etag=etag, concurrency="first-write"))
    assert await value_of(store, "k") == b"3"


@pytest.mark.parametrize("concurrency", [None, "last-write"])
async def test_write_without_etag_overwrites(store: StateStore, concurrency: str | None) -> None:
    await store.set(SetRequest("k", b"1"))
    await store.set(SetRequest("k", b"2", concurrency=concurrency))  # type: ignore[arg-type]
    assert await value_of(store, "k") == b"2"


async def test_delete_missing_key_succeeds(store: StateStore) -> None:
    await store.delete(DeleteRequest("nope"))
    await store.delete(DeleteRequest("nope", concurrency="last-write"))


async def wait_until_gone(store: StateStore, key: str) -> None:
    async with asyncio.timeout(DEADLINE):
        while True:
            if await store.get(key) is None:
                return
            await asyncio.sleep(0.05)


async def test_ttl_expires_the_item(store: StateStore) -> None:
    await store.set(SetRequest("k", b"1", ttl_seconds=1))
    item = await store.get("k")
    assert item is not None
    if isinstance(store, RedisStateStore):  # daprd's Redis store reports no expiry either
        assert "ttlExpireTime" not in item.metadata
    else:
        assert item.metadata["ttlExpireTime"].endswith("Z")
    await wait_until_gone(store, "k")
    await store.set(SetRequest("k", b"2", concurrency="first-write"))  # expired counts as missing


@pytest.mark.parametrize(("raw", "expected"), [("", None), ("0", 0), ("60", 60), ("+7", 7)])
async def test_parse_ttl_reads_a_whole_number(
    store: StateStore, raw: str, expected: int | None
) -> None:
    assert store.parse_ttl(raw) == expected


async def test_parse_ttl_refuses_anything_else(store: StateStore) -> None:
    for raw in ("abc", " 5", "1.5", "5s", "0x10"):
        with pytest.raises(StoreError, match=f'parsing "{raw}": invalid syntax'):
            store.parse_ttl(raw)


@pytest.mark.parametrize("ttl", [None, 0, -1])
async def test_write_without_positive_ttl_removes_the_ttl(
    store: StateStore, ttl: int | None
) -> None:
    await store.set(SetRequest("k", b"1", ttl_seconds=100))
    await store.set(SetRequest("k", b"2", ttl_seconds=ttl))
    item = await store.get("k")
    assert item is not None
    assert "ttlExpireTime" not in item.metadata


async def test_transact_applies_every_operation(store: StateStore) -> None:
    await store.set(SetRequest("gone", b"0"))
    await store.set(SetRequest("kept", b"0"))
    await store.transact(
        [
            SetRequest("a", b"1"),
            SetRequest("kept", b"2", etag=await etag_of(store, "kept")),
            DeleteRequest("gone"),
        ]
    )
    assert [await value_of(store, k) for k in ("a", "kept", "gone")] == [b"1", b"2", None]


async def test_transact_with_one_bad_etag_applies_nothing(store: StateStore) -> None:
    await store.set(SetRequest("x", b"0"))
    await store.set(SetRequest("z", b"0"))
    stale = await etag_of(store, "x")
    await store.set(SetRequest("x", b"1"))
    with pytest.raises(ETagMismatchError):
        await store.transact(
            [
                SetRequest("y", b"new"),
                DeleteRequest("z"),
                SetRequest("x", b"bad", etag=stale),
            ]
        )
    assert [await value_of(store, k) for k in ("x", "y", "z")] == [b"1", None, b"0"]


async def test_transact_with_first_write_conflict_applies_nothing(store: StateStore) -> None:
    await store.set(SetRequest("x", b"0"))
    with pytest.raises(ETagMismatchError):
        await store.transact(
            [
                DeleteRequest("y"),
                SetRequest("z", b"1"),
                SetRequest("x", b"1", concurrency="first-write"),
            ]
        )
    assert [await value_of(store, k) for k in ("x", "z")] == [b"0", None]


async def test_empty_transaction_does_nothing(store: StateStore) -> None:
    await store.transact([])


async def test_bulk_get_keeps_key_order_with_missing_keys(store: StateStore) -> None:
    await store.set(SetRequest("a", b"1"))
    await store.set(SetRequest("b", b"2"))
    items = await store.bulk_get(["b", "missing", "a"])
    assert [None if i is None else (i.key, i.value) for i in items] == [
        ("b", b"2"),
        None,
        ("a", b"1"),
    ]
    assert await store.bulk_get([]) == []


async def increment(store: StateStore, key: str) -> None:
    """Read-modify-write with optimistic concurrency, retrying on a mismatch."""
    while True:
        item = await store.get(key)
        if item is None:
            request = SetRequest(key, b"1", concurrency="first-write")
        else:
            request = SetRequest(key, str(int(item.value) + 1).encode(), etag=item.etag)
        try:
            await store.set(request)
            return
        except ETagMismatchError:
            await asyncio.sleep(0)


async def test_concurrent_increments_lose_no_update(store: StateStore) -> None:
    async with asyncio.timeout(DEADLINE * 3):
        await asyncio.gather(*(increment(store, "counter") for _ in range(20)))
    assert await value_of(store, "counter") == b"20"


def calls_before_start(store: StateStore) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: store.get("k"),
        lambda: store.bulk_get(["k"]),
        lambda: store.set(SetRequest("k", b"1")),
        lambda: store.delete(DeleteRequest("k")),
        lambda: store.transact([SetRequest("k", b"1")]),
    ]


async def test_methods_before_start_raise(factory: StoreFactory) -> None:
    unstarted = factory()
    for call in calls_before_start(unstarted):
        with pytest.raises(RuntimeError, match="before start"):
            await call()
