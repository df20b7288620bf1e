"""State API over HTTP (dapr-http-api.md §0, §1), on every backend."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.api.helpers import (
    JSON,
    assert_error,
    client_for,
    eventually,
    raw_redis,
    sidecar_config,
    two_sidecars,
)
from tests.runtime.harness import component_yaml, running_sidecar, write_components

STATE = "/v1.0/state/statestore"


async def save(dapr: httpx.AsyncClient, *items: dict[str, Any], **params: str) -> httpx.Response:
    return await dapr.post(STATE, json=list(items), params=params)


async def etag_of(dapr: httpx.AsyncClient, key: str) -> str:
    r = await dapr.get(f"{STATE}/{key}")
    assert r.status_code == 200, r.text
    return r.headers["etag"]


# --- save ----------------------------------------------------------------------------------------


async def test_save_returns_204_with_empty_body(dapr: httpx.AsyncClient) -> None:
    r = await save(dapr, {"key": "a", "value": {"x": 1}}, {"key": "b", "value": [1, 2]})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert (await dapr.get(f"{STATE}/a")).json() == {"x": 1}
    assert (await dapr.get(f"{STATE}/b")).json() == [1, 2]
    r = await dapr.put(STATE, json=[{"key": "p", "value": 1}])  # PUT works as POST
    assert r.status_code == 204, r.text
    assert (await dapr.get(f"{STATE}/p")).json() == 1
    r = await dapr.post(STATE, content=b"[]", headers={"content-type": JSON})
    assert r.status_code == 204, r.text
    assert r.content == b""


MALFORMED_SAVES = {
    "empty": b"",
    "object": b"{}",
    "not-json": b"not json",
    "trailing-comma": b'[{"key": "a", "value": 1},]',
    "truncated": b'[{"key": "a", "value": 1}',
    "etag-number": b'[{"key": "a", "value": 1, "etag": 1}]',
    "etag-object": b'[{"key": "a", "value": 1, "etag": {"v": "1"}}]',
    "key-with-separator": b'[{"key": "a||b", "value": 1}]',
}


async def test_save_malformed_is_400(dapr: httpx.AsyncClient) -> None:
    for name, body in MALFORMED_SAVES.items():
        r = await dapr.post(STATE, content=body, headers={"content-type": JSON})
        assert r.status_code == 400, name
        assert_error(r, 400, "ERR_MALFORMED_REQUEST")
    assert (await dapr.get(f"{STATE}/a")).status_code == 204  # nothing was written


async def test_save_item_without_key_is_400_and_writes_nothing(dapr: httpx.AsyncClient) -> None:
    for item in ({"value": 1}, {"key": "", "value": 1}):
        r = await save(dapr, {"key": "ok", "value": 1}, item)
        assert_error(r, 400, "ERR_MALFORMED_REQUEST", '"key" is a required field')
    r = await save(dapr, {"key": "first", "value": 1}, {"key": "x||y", "value": 2})
    assert_error(r, 400, "ERR_MALFORMED_REQUEST")
    assert (await dapr.get(f"{STATE}/ok")).status_code == 204
    assert (await dapr.get(f"{STATE}/first")).status_code == 204


UNKNOWN_STORE = [
    ("POST", "/v1.0/state/nope", [{"key": "a", "value": 1}]),
    ("GET", "/v1.0/state/nope/a", None),
    ("DELETE", "/v1.0/state/nope/a", None),
    ("POST", "/v1.0/state/nope/bulk", {"keys": ["a"]}),
    ("POST", "/v1.0/state/nope/transaction", {"operations": []}),
]


async def test_unknown_store_is_400_not_found(dapr: httpx.AsyncClient) -> None:
    for method, path, body in UNKNOWN_STORE:
        r = await dapr.request(method, path, json=body)
        assert r.status_code == 400, (method, path)
        assert_error(r, 400, "ERR_STATE_STORE_NOT_FOUND")
        assert r.json()["message"] == "state store nope is not found"


async def test_etag_on_save_must_match(dapr: httpx.AsyncClient) -> None:
    assert (await save(dapr, {"key": "k", "value": 1})).status_code == 204
    stale = await etag_of(dapr, "k")
    assert (await save(dapr, {"key": "k", "value": 2})).status_code == 204
    r = await save(dapr, {"key": "k", "value": 3, "etag": stale})
    assert_error(r, 409, "ERR_STATE_SAVE")
    assert (await dapr.get(f"{STATE}/k")).json() == 2
    r = await save(dapr, {"key": "k", "value": 4, "etag": await etag_of(dapr, "k")})
    assert r.status_code == 204, r.text
    assert (await dapr.get(f"{STATE}/k")).json() == 4


async def test_etag_for_missing_key_or_in_a_foreign_format(
    dapr: httpx.AsyncClient, backend: str
) -> None:
    # An ETag for a key that does not exist is a mismatch (in-memory semantics, §1.6).
    r = await save(dapr, {"key": "nothing-here", "value": 1, "etag": "1"})
    assert_error(r, 409, "ERR_STATE_SAVE")
    assert (await dapr.get(f"{STATE}/nothing-here")).status_code == 204
    # Redis ETags are integers: anything else is ETagInvalid (400); elsewhere a mismatch (409).
    assert (await save(dapr, {"key": "k", "value": 1})).status_code == 204
    r = await save(dapr, {"key": "k", "value": 2, "etag": "not-a-number"})
    if backend == "redis":
        assert_error(r, 400, "ERR_STATE_SAVE")
    else:
        assert_error(r, 409, "ERR_STATE_SAVE")
    assert (await dapr.get(f"{STATE}/k")).json() == 1


async def test_first_write_conflicts_and_last_write_overwrites(dapr: httpx.AsyncClient) -> None:
    first, last = {"concurrency": "first-write"}, {"concurrency": "last-write"}
    r = await save(dapr, {"key": "fw", "value": 1, "options": first})
    assert r.status_code == 204, r.text
    r = await save(dapr, {"key": "fw", "value": 2, "options": first})
    assert_error(r, 409, "ERR_STATE_SAVE")
    assert (await dapr.get(f"{STATE}/fw")).json() == 1
    assert (await save(dapr, {"key": "fw", "value": 3, "options": last})).status_code == 204
    assert (await save(dapr, {"key": "fw", "value": 4})).status_code == 204
    assert (await dapr.get(f"{STATE}/fw")).json() == 4


async def test_values_are_stored_as_json_text(dapr: httpx.AsyncClient) -> None:
    unicode = {"text": "naïve ✓ 日本"}
    r = await save(
        dapr, {"key": "name", "value": "DeathStar"}, {"key": "nv"}, {"key": "u", "value": unicode}
    )
    assert r.status_code == 204, r.text
    assert (await dapr.get(f"{STATE}/u")).json() == unicode
    r = await dapr.get(f"{STATE}/name")
    assert r.status_code == 200
    assert r.content == b'"DeathStar"'
    assert r.headers["content-type"].split(";")[0] == JSON
    r = await dapr.get(f"{STATE}/nv")  # an item without value is stored as null
    assert r.status_code == 200, r.text
    assert r.content == b"null"
    assert r.headers["etag"]


async def test_numbers_keep_precision(dapr: httpx.AsyncClient) -> None:
    body = b'[{"key": "n", "value": {"big": 12345678901234567890, "f": 0.12345678901234567}}]'
    r = await dapr.post(STATE, content=body, headers={"content-type": JSON})
    assert r.status_code == 204, r.text
    r = await dapr.get(f"{STATE}/n")
    assert b"12345678901234567890" in r.content, r.content
    assert r.json() == {"big": 12345678901234567890, "f": 0.12345678901234567}
    r = await dapr.post(f"{STATE}/bulk", json={"keys": ["n"]})
    assert b"12345678901234567890" in r.content, r.content


async def test_ttl_in_seconds_expires_the_item(dapr: httpx.AsyncClient, backend: str) -> None:
    # A repeated metadata.<k> query parameter: the first value wins (§0).
    params = [("metadata.ttlInSeconds", "1"), ("metadata.ttlInSeconds", "100000")]
    r = await dapr.post(STATE, json=[{"key": "q", "value": 1}], params=params)
    assert r.status_code == 204, r.text
    r = await save(dapr, {"key": "m", "value": 1, "metadata": {"ttlInSeconds": "1"}})
    assert r.status_code == 204, r.text
    assert (await save(dapr, {"key": "keep", "value": 2})).status_code == 204
    r = await dapr.get(f"{STATE}/q")
    assert r.status_code == 200
    if backend == "memory":  # state.in-memory reports the expiry as a response header (§0)
        expires = datetime.fromisoformat(r.headers["metadata.ttlExpireTime"].replace("Z", "+00:00"))
        assert expires - datetime.now(UTC) < timedelta(seconds=5)

    async def gone() -> bool:
        codes = [(await dapr.get(f"{STATE}/{key}")).status_code for key in ("q", "m")]
        return codes == [204, 204]

    await eventually(gone, within=8)
    assert (await dapr.get(f"{STATE}/keep")).json() == 2


# --- get -----------------------------------------------------------------------------------------


async def test_get_found_and_missing(dapr: httpx.AsyncClient) -> None:
    assert (await save(dapr, {"key": "g", "value": {"a": [1, "b"]}})).status_code == 204
    r = await dapr.get(f"{STATE}/g")
    assert r.status_code == 200
    assert r.json() == {"a": [1, "b"]}
    first = r.headers["etag"]
    assert first
    assert await etag_of(dapr, "g") == first  # stable while nothing is written
    assert (await save(dapr, {"key": "g", "value": {"a": [1, "b"]}})).status_code == 204
    assert await etag_of(dapr, "g") != first
    r = await dapr.get(f"{STATE}/missing")
    assert r.status_code == 204
    assert r.content == b""
    assert "etag" not in r.headers


# --- bulk get ------------------------------------------------------------------------------------


async def test_bulk_get_in_key_order_with_data_and_etag(dapr: httpx.AsyncClient) -> None:
    r = await save(dapr, {"key": "a", "value": {"n": 1}}, {"key": "b", "value": "two"})
    assert r.status_code == 204
    etag_a, etag_b = await etag_of(dapr, "a"), await etag_of(dapr, "b")
    r = await dapr.post(f"{STATE}/bulk", json={"keys": ["b", "missing", "a"], "parallelism": 2})
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"key": "b", "data": "two", "etag": etag_b},
        {"key": "missing"},
        {"key": "a", "data": {"n": 1}, "etag": etag_a},
    ]
    r = await dapr.put(f"{STATE}/bulk", json={"keys": ["a"]})  # PUT works as POST
    assert r.status_code == 200, r.text
    assert r.json() == [{"key": "a", "data": {"n": 1}, "etag": etag_a}]


MALFORMED_BULK = {
    "empty": b"",
    "not-json": b"not json",
    "keys-string": b'{"keys": "a"}',
    "keys-numbers": b'{"keys": [1, 2]}',
    "trailing-comma": b'{"keys": ["a",]}',
}


async def test_bulk_get_empty_and_malformed(dapr: httpx.AsyncClient) -> None:
    r = await dapr.post(f"{STATE}/bulk", json={"keys": []})
    assert r.status_code == 200, r.text
    assert r.json() == []
    for name, body in MALFORMED_BULK.items():
        r = await dapr.post(f"{STATE}/bulk", content=body, headers={"content-type": JSON})
        assert r.status_code == 400, name
        assert_error(r, 400, "ERR_MALFORMED_REQUEST")


# --- delete --------------------------------------------------------------------------------------


async def test_delete_plain_and_with_if_match(dapr: httpx.AsyncClient) -> None:
    assert (await save(dapr, {"key": "d", "value": 1})).status_code == 204
    r = await dapr.delete(f"{STATE}/d")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert (await dapr.get(f"{STATE}/d")).status_code == 204
    r = await dapr.delete(f"{STATE}/never-written")  # a missing key, no ETag
    assert r.status_code == 204, r.text
    assert (await save(dapr, {"key": "d", "value": 1})).status_code == 204
    stale = await etag_of(dapr, "d")
    assert (await save(dapr, {"key": "d", "value": 2})).status_code == 204
    r = await dapr.delete(f"{STATE}/d", headers={"If-Match": stale})
    assert_error(r, 409, "ERR_STATE_DELETE")
    assert (await dapr.get(f"{STATE}/d")).json() == 2
    r = await dapr.delete(f"{STATE}/d", headers={"If-Match": await etag_of(dapr, "d")})
    assert r.status_code == 204, r.text
    assert (await dapr.get(f"{STATE}/d")).status_code == 204


# --- transaction ---------------------------------------------------------------------------------


async def test_transaction_applies_upserts_and_deletes(dapr: httpx.AsyncClient) -> None:
    assert (await save(dapr, {"key": "old", "value": 1})).status_code == 204
    ops = [
        {"operation": "upsert", "request": {"key": "new", "value": {"v": 2}}},
        {"operation": "delete", "request": {"key": "old"}},
    ]
    r = await dapr.post(f"{STATE}/transaction", json={"operations": ops})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert (await dapr.get(f"{STATE}/new")).json() == {"v": 2}
    assert (await dapr.get(f"{STATE}/old")).status_code == 204
    r = await dapr.post(f"{STATE}/transaction", json={"operations": []})
    assert r.status_code == 204, r.text


async def test_transaction_bad_requests_are_400(dapr: httpx.AsyncClient) -> None:
    ops = [
        {"operation": "upsert", "request": {"key": "x", "value": 1}},
        {"operation": "merge", "request": {"key": "y", "value": 1}},
    ]
    r = await dapr.post(f"{STATE}/transaction", json={"operations": ops})
    assert_error(r, 400, "ERR_NOT_SUPPORTED_STATE_OPERATION", "merge")
    for body in (b"", b"not json", b'{"operations": [}'):
        r = await dapr.post(f"{STATE}/transaction", content=body, headers={"content-type": JSON})
        assert_error(r, 400, "ERR_MALFORMED_REQUEST")
    assert (await dapr.get(f"{STATE}/x")).status_code == 204


async def test_transaction_etag_mismatch_is_500_and_applies_nothing(
    dapr: httpx.AsyncClient,
) -> None:
    r = await save(dapr, {"key": "a", "value": 1}, {"key": "b", "value": 1})
    assert r.status_code == 204
    stale = await etag_of(dapr, "a")
    assert (await save(dapr, {"key": "a", "value": 2})).status_code == 204
    ops = [
        {"operation": "upsert", "request": {"key": "c", "value": 3}},
        {"operation": "delete", "request": {"key": "b"}},
        {"operation": "upsert", "request": {"key": "a", "value": 99, "etag": stale}},
    ]
    r = await dapr.post(f"{STATE}/transaction", json={"operations": ops})
    assert_error(r, 500, "ERR_STATE_TRANSACTION")
    assert (await dapr.get(f"{STATE}/c")).status_code == 204
    assert (await dapr.get(f"{STATE}/b")).json() == 1
    assert (await dapr.get(f"{STATE}/a")).json() == 2


# --- keyPrefix -----------------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_stores_app_prefixed_hash(redis_url: str, tmp_path: Path) -> None:
    resources = write_components(tmp_path / "components", "redis", redis_address=redis_url)
    config = sidecar_config(tmp_path, resources)
    async with running_sidecar(config) as sidecar, client_for(sidecar) as dapr:
        assert (await save(dapr, {"key": "k", "value": {"a": 1}})).status_code == 204
        etag = await etag_of(dapr, "k")
        bulk = (await dapr.post(f"{STATE}/bulk", json={"keys": ["k"]})).json()
    assert bulk[0]["key"] == "k"
    async with raw_redis(redis_url) as client:
        assert await client.exists("k") == 0
        stored = await client.hgetall("myapp||k")
    assert set(stored) == {b"data", b"version"}
    assert stored[b"data"] == b'{"a":1}'
    assert stored[b"version"].decode() == etag


STRATEGIES = {"statestore": None, "s-none": "none", "s-name": "name", "s-custom": "MyPrefix"}


def shared_backend(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Path:
    """State stores two sidecars can share, one per ``keyPrefix`` strategy (default: appid)."""
    directory = tmp_path / "shared"
    directory.mkdir()
    documents = []
    for name, strategy in STRATEGIES.items():
        meta = {"keyPrefix": strategy} if strategy else {}
        if backend == "redis":
            meta["redisHost"] = request.getfixturevalue("redis_url")
            documents.append(component_yaml(name, "state.redis", meta))
        else:
            meta["connectionString"] = str(directory / f"{name}.db")
            documents.append(component_yaml(name, "state.sqlite", meta))
    (directory / "stores.yaml").write_text("---\n".join(documents))
    return directory


async def stored_keys(request: pytest.FixtureRequest, backend: str, resources: Path) -> set[str]:
    """Every key as the backend holds it (all redis keys, or every sqlite ``state`` table)."""
    if backend == "redis":
        async with raw_redis(request.getfixturevalue("redis_url")) as client:
            return {key.decode() for key in await client.keys("*")}
    keys: set[str] = set()
    for name in STRATEGIES:
        with contextlib.closing(sqlite3.connect(resources / f"{name}.db")) as db:
            keys |= {row[0] for row in db.execute("SELECT key FROM state")}
    return keys


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_key_prefix_strategies_on_a_shared_backend(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    resources = shared_backend(request, backend, tmp_path)
    config_a = sidecar_config(tmp_path, resources, app_id="app-a")
    config_b = sidecar_config(tmp_path, resources, app_id="app-b")
    async with two_sidecars(config_a, config_b) as (a, b):
        # appid (the default): each app has its own keys.
        assert (await save(a, {"key": "k", "value": "from-a"})).status_code == 204
        assert (await b.get(f"{STATE}/k")).status_code == 204
        assert (await save(b, {"key": "k", "value": "from-b"})).status_code == 204
        assert (await a.get(f"{STATE}/k")).json() == "from-a"
        assert (await b.get(f"{STATE}/k")).json() == "from-b"
        assert (await b.delete(f"{STATE}/k")).status_code == 204
        assert (await a.get(f"{STATE}/k")).json() == "from-a"
        # none, name and a literal prefix do not involve the app-id: both apps share the item.
        for store in ("s-none", "s-name", "s-custom"):
            r = await a.post(f"/v1.0/state/{store}", json=[{"key": "k", "value": store}])
            assert r.status_code == 204, r.text
            r = await b.get(f"/v1.0/state/{store}/k")
            assert r.status_code == 200, (store, r.text)
            assert r.json() == store
            bulk = (await b.post(f"/v1.0/state/{store}/bulk", json={"keys": ["k"]})).json()
            assert bulk == [{"key": "k", "data": store, "etag": r.headers["etag"]}]
    expected = {"app-a||k", "k", "s-name||k", "myprefix||k"}
    assert await stored_keys(request, backend, resources) == expected
