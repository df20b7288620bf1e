"""State API over HTTP (dapr-http-api.md §0, §1), on every backend and both engines.

Where the engines deliberately differ (``docs/runtime.md``, "Checked against real daprd",
State), the test asserts each engine's answer with ``per_engine``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engines import Engine, per_engine
from tests.runtime.api.helpers import (
    JSON,
    assert_error,
    client_for,
    eventually,
    raw_redis,
    sidecar_config,
    two_sidecars,
)
from tests.runtime.harness import component_yaml, write_components

STATE = "/v1.0/state/statestore"
SAVE_FAILED = "failed saving state in state store statestore"
TRANSACTION_FAILED = "error while executing state transaction"
MISMATCH = "possible etag mismatch. error from state store"
GOOGLE = "type.googleapis.com/google.rpc."


async def save(dapr: httpx.AsyncClient, *items: dict[str, Any], **params: str) -> httpx.Response:
    return await dapr.post(STATE, json=list(items), params=params)


async def post_raw(dapr: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await dapr.post(path, content=body, headers={"content-type": JSON})


async def etag_of(dapr: httpx.AsyncClient, key: str) -> str:
    r = await dapr.get(f"{STATE}/{key}")
    assert r.status_code == 200, r.text
    return r.headers["etag"]


def assert_message(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert_error(response, status, code)
    assert response.json()["message"] == message, response.json()


def assert_mismatch(
    response: httpx.Response,
    backend: str,
    *,
    code: str,
    context: str,
    memory: str,
    redis: str,
    status: int = 409,
) -> None:
    """An ETag mismatch as each daprd store words it (in-memory: why; SQLite: nothing more;
    Redis: its script's error, after a ``redis.call`` prefix naming daprd's script)."""
    assert_error(response, status, code)
    message = response.json()["message"]
    if backend == "memory":
        assert message == f"{context}: {MISMATCH}: {memory}", message
    elif backend == "sqlite":
        assert message == f"{context}: {MISMATCH}", message
    else:
        assert message.startswith(f"{context}: {MISMATCH}: "), message
        assert message.endswith(redis), message


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
    for empty in (b"[]", b"null", b" [] anything after the first JSON value is ignored"):
        r = await post_raw(dapr, STATE, empty)
        assert r.status_code == 204, (empty, r.text)
        assert r.content == b""


async def test_save_decodes_fields_as_daprd_does(dapr: httpx.AsyncClient) -> None:
    # Field names match ignoring case, unknown fields are ignored, null is the zero value.
    body = b'[{"KEY": "k", "Value": {"v": 1}, "unknown": [1], "etag": null, "metadata": null}]'
    assert (await post_raw(dapr, STATE, body)).status_code == 204
    assert (await dapr.get(f"{STATE}/k")).json() == {"v": 1}


MALFORMED_SAVES = {
    "empty": (b"", "EOF"),
    "blank": (b" \n", "EOF"),
    "truncated": (b'[{"key": "a", "value": 1}', "unexpected EOF"),
    "unterminated": (b'[{"key": "a', "unexpected EOF"),
    "object": (b"{}", "json: cannot unmarshal object into Go value of type []state.SetRequest"),
    "string": (b'"a"', "json: cannot unmarshal string into Go value of type []state.SetRequest"),
    "item-number": (b"[5]", "json: cannot unmarshal number into Go value of type state.SetRequest"),
    "key-number": (
        b'[{"key": 5, "value": 1}]',
        "json: cannot unmarshal number into Go struct field SetRequest.key of type string",
    ),
    "etag-number": (
        b'[{"key": "a", "value": 1, "etag": 1}]',
        "json: cannot unmarshal number into Go struct field SetRequest.etag of type string",
    ),
    "etag-object": (
        b'[{"key": "a", "value": 1, "etag": {"v": "1"}}]',
        "json: cannot unmarshal object into Go struct field SetRequest.etag of type string",
    ),
    "metadata-number": (
        b'[{"key": "a", "value": 1, "metadata": {"ttlInSeconds": 5}}]',
        "json: cannot unmarshal number into Go struct field SetRequest.metadata of type string",
    ),
    "metadata-bool": (
        b'[{"key": "a", "value": 1, "metadata": {"ttlInSeconds": true}}]',
        "json: cannot unmarshal bool into Go struct field SetRequest.metadata of type string",
    ),
    "metadata-array": (
        b'[{"key": "a", "value": 1, "metadata": ["x"]}]',
        "json: cannot unmarshal array into Go struct field SetRequest.metadata"
        " of type map[string]string",
    ),
    "content-type-number": (
        b'[{"key": "a", "value": 1, "contentType": 1}]',
        "json: cannot unmarshal number into Go struct field SetRequest.contentType of type string",
    ),
    # Go goes on after a mistake and reports the first one in the body, not in the struct.
    "first-mistake-wins": (
        b'[{"metadata": {"a": 1}, "key": 5}, {"etag": 1}]',
        "json: cannot unmarshal number into Go struct field SetRequest.metadata of type string",
    ),
    "options-string": (
        b'[{"key": "a", "value": 1, "options": "first-write"}]',
        "json: cannot unmarshal string into Go struct field SetRequest.options"
        " of type state.SetStateOption",
    ),
    "concurrency-bool": (
        b'[{"key": "a", "value": 1, "options": {"concurrency": true}}]',
        "json: cannot unmarshal bool into Go struct field SetStateOption.options.Concurrency"
        " of type string",
    ),
    "value-overflow": (
        b'[{"key": "a", "value": [1E400]}]',
        "json: cannot unmarshal number 1E400 into Go struct field SetRequest.value of type float64",
    ),
    "nan": (
        b'[{"key": "a", "value": NaN}]',
        "invalid character 'N' looking for beginning of value",
    ),
    "missing-key": (b'[{"value": 1}]', '"key" is a required field'),
    "null-item": (b"[null]", '"key" is a required field'),
}

#: JSON syntax errors: the same status and code, each parser's own words (docs/runtime.md).
SYNTAX_ERRORS = {
    "not-json": (
        b"not json",
        "Expecting value: line 1 column 1 (char 0)",
        "invalid character 'o' in literal null (expecting 'u')",
    ),
    "trailing-comma": (
        b'[{"key": "a", "value": 1},]',
        "Expecting value: line 1 column 27 (char 26)",
        "invalid character ']' looking for beginning of value",
    ),
}


async def test_save_malformed_is_400(engine: Engine, dapr: httpx.AsyncClient) -> None:
    for name, (body, message) in MALFORMED_SAVES.items():
        r = await post_raw(dapr, STATE, body)
        assert r.status_code == 400, name
        assert_message(r, 400, "ERR_MALFORMED_REQUEST", message)
    for name, (body, daca, daprd) in SYNTAX_ERRORS.items():
        r = await post_raw(dapr, STATE, body)
        assert r.status_code == 400, name
        assert_message(r, 400, "ERR_MALFORMED_REQUEST", per_engine(engine, daca=daca, daprd=daprd))
    assert (await dapr.get(f"{STATE}/a")).status_code == 204  # nothing was written


async def test_save_item_without_key_is_400_and_writes_nothing(dapr: httpx.AsyncClient) -> None:
    for item in ({"value": 1}, {"key": "", "value": 1}):
        r = await save(dapr, {"key": "ok", "value": 1}, item)
        assert_message(r, 400, "ERR_MALFORMED_REQUEST", '"key" is a required field')
    r = await save(dapr, {"key": "first", "value": 1}, {"key": "x||y", "value": 2})
    assert_error(r, 400, "ERR_MALFORMED_REQUEST")
    assert (await dapr.get(f"{STATE}/ok")).status_code == 204
    assert (await dapr.get(f"{STATE}/first")).status_code == 204


def illegal_key_details(key: str, message: str, *, field: bool = True) -> list[dict[str, Any]]:
    violation = {"field": key, "description": message} if field else {"description": message}
    return [
        {"@type": GOOGLE + "BadRequest", "field_violations": [violation]},
        {
            "@type": GOOGLE + "ResourceInfo",
            "description": "",
            "owner": "",
            "resource_name": "statestore",
            "resource_type": "state",
        },
        {
            "@type": GOOGLE + "ErrorInfo",
            "domain": "dapr.io",
            "metadata": None,
            "reason": "DAPR_STATE_ILLEGAL_KEY",
        },
    ]


async def test_key_with_separator_is_refused_with_details(dapr: httpx.AsyncClient) -> None:
    message = (
        "api error: code = InvalidArgument desc = input key/keyPrefix 'a||b' can't contain '||'"
    )
    upsert = {"operation": "upsert", "request": {"key": "a||b", "value": 1}}
    requests: list[tuple[str, str, Any, bool]] = [
        ("POST", STATE, [{"key": "a||b", "value": 1}], True),
        ("GET", f"{STATE}/a||b", None, True),
        ("DELETE", f"{STATE}/a||b", None, True),
        ("POST", f"{STATE}/bulk", {"keys": ["ok", "a||b"]}, True),
        # In a transaction daprd names the field after clearing it: an empty field is left out.
        ("POST", f"{STATE}/transaction", {"operations": [upsert]}, False),
    ]
    for method, path, body, field in requests:
        r = await dapr.request(method, path, json=body)
        assert_message(r, 400, "ERR_MALFORMED_REQUEST", message)
        assert r.json()["details"] == illegal_key_details("a||b", message, field=field)


UNKNOWN_STORE = [
    ("POST", "/v1.0/state/nope", [{"key": "a", "value": 1}]),
    ("GET", "/v1.0/state/nope/a", None),
    ("DELETE", "/v1.0/state/nope/a", None),
    ("POST", "/v1.0/state/nope/bulk", {"keys": ["a"]}),
    ("POST", "/v1.0/state/nope/transaction", {"operations": []}),
]


async def test_unknown_store_is_400_not_found(dapr: httpx.AsyncClient) -> None:
    info = {
        "@type": GOOGLE + "ErrorInfo",
        "domain": "dapr.io",
        "metadata": {"appID": "myapp"},
        "reason": "DAPR_STATE_NOT_FOUND",
    }
    for method, path, body in UNKNOWN_STORE:
        r = await dapr.request(method, path, json=body)
        assert r.status_code == 400, (method, path)
        assert_message(r, 400, "ERR_STATE_STORE_NOT_FOUND", "state store nope is not found")
        assert r.json()["details"] == [info]


async def test_no_state_store_is_500_not_configured(engine: Engine, tmp_path: Path) -> None:
    resources = tmp_path / "components"
    resources.mkdir()
    pubsub = component_yaml("pubsub", "pubsub.in-memory", {})
    (resources / "pubsub.yaml").write_text(pubsub)
    info = {
        "@type": GOOGLE + "ErrorInfo",
        "domain": "dapr.io",
        "metadata": {"appID": "myapp"},
        "reason": "DAPR_STATE_NOT_CONFIGURED",
    }
    config = sidecar_config(tmp_path, resources)
    async with engine.sidecar(config) as sidecar, client_for(sidecar) as dapr:
        for method, path, body in UNKNOWN_STORE:
            r = await dapr.request(method, path, json=body)
            message = "state store nope is not configured"
            assert_message(r, 500, "ERR_STATE_STORE_NOT_CONFIGURED", message)
            assert r.json()["details"] == [info]


async def test_etag_on_save_must_match(dapr: httpx.AsyncClient, backend: str) -> None:
    assert (await save(dapr, {"key": "k", "value": 1})).status_code == 204
    stale = await etag_of(dapr, "k")
    assert (await save(dapr, {"key": "k", "value": 2})).status_code == 204
    current = await etag_of(dapr, "k")
    r = await save(dapr, {"key": "k", "value": 3, "etag": stale})
    why = f"state etag not match for key=myapp||k: current={current}, expect={stale}"
    assert_mismatch(
        r, backend, code="ERR_STATE_SAVE", context=SAVE_FAILED, memory=why,
        redis="failed to set key myapp||k",
    )  # fmt: skip
    assert (await dapr.get(f"{STATE}/k")).json() == 2
    r = await save(dapr, {"key": "k", "value": 4, "etag": await etag_of(dapr, "k")})
    assert r.status_code == 204, r.text
    assert (await dapr.get(f"{STATE}/k")).json() == 4
    assert (await save(dapr, {"key": "k", "value": 5, "etag": ""})).status_code == 204  # none


async def test_etag_for_missing_key_or_in_a_foreign_format(
    engine: Engine, dapr: httpx.AsyncClient, backend: str
) -> None:
    # An ETag for a key that does not exist is a mismatch (in-memory semantics, §1.6) on every
    # daca store; daprd's Redis store writes the item.
    r = await save(dapr, {"key": "nothing-here", "value": 1, "etag": "1"})
    created = backend == "redis" and engine.name == "daprd"
    if created:
        assert r.status_code == 204, r.text
    else:
        why = "state not exist or expired for key=myapp||nothing-here"
        assert_mismatch(
            r, backend, code="ERR_STATE_SAVE", context=SAVE_FAILED, memory=why,
            redis="failed to set key myapp||nothing-here",
        )  # fmt: skip
    missing = (await dapr.get(f"{STATE}/nothing-here")).status_code
    assert missing == per_engine(engine, daca=204, daprd=200 if created else 204)
    # A Redis write's ETag is an integer: anything else is ETagInvalid (400); elsewhere, and for
    # a Redis delete (compared as text), it is a mismatch (409).
    assert (await save(dapr, {"key": "k", "value": 1})).status_code == 204
    r = await save(dapr, {"key": "k", "value": 2, "etag": "not-a-number"})
    if backend == "redis":
        invalid = 'invalid etag value: strconv.Atoi: parsing "not-a-number": invalid syntax'
        assert_message(r, 400, "ERR_STATE_SAVE", f"{SAVE_FAILED}: {invalid}")
    else:
        why = f"state etag not match for key=myapp||k: current={await etag_of(dapr, 'k')}"
        assert_mismatch(
            r, backend, code="ERR_STATE_SAVE", context=SAVE_FAILED,
            memory=f"{why}, expect=not-a-number", redis="(not Redis)",
        )  # fmt: skip
    r = await dapr.delete(f"{STATE}/k", headers={"If-Match": "not-a-number"})
    why = f"state etag not match for key=myapp||k: current={await etag_of(dapr, 'k')}"
    assert_mismatch(
        r, backend, code="ERR_STATE_DELETE", context="failed deleting state with key k",
        memory=f"{why}, expect=not-a-number", redis="failed to delete myapp||k",
    )  # fmt: skip
    assert (await dapr.get(f"{STATE}/k")).json() == 1


async def test_first_write_conflicts_and_last_write_overwrites(
    engine: Engine, dapr: httpx.AsyncClient, backend: str
) -> None:
    first, last = {"concurrency": "first-write"}, {"concurrency": "last-write"}
    r = await save(dapr, {"key": "fw", "value": 1, "options": first})
    assert r.status_code == 204, r.text
    r = await save(dapr, {"key": "fw", "value": 2, "options": first})
    if backend == "redis" and engine.name == "daprd":  # not an ETag error there: 500
        assert_error(r, 500, "ERR_STATE_SAVE", "failed to set key myapp||fw")
    else:
        assert_mismatch(
            r, backend, code="ERR_STATE_SAVE", context=SAVE_FAILED,
            memory="item already exists and no etag was passed",
            redis="failed to set key myapp||fw",
        )  # fmt: skip
    assert (await dapr.get(f"{STATE}/fw")).json() == 1
    # daprd's Redis store flags a first-write item in its hash: from then on, a write without
    # the ETag fails, last-write or not. Elsewhere (and on every daca store) it overwrites.
    sticky = backend == "redis" and engine.name == "daprd"
    for value, item in ((3, {"options": last}), (4, {})):
        r = await save(dapr, {"key": "fw", "value": value, **item})
        if sticky:
            assert_error(r, 500, "ERR_STATE_SAVE", "failed to set key myapp||fw")
        else:
            assert r.status_code == 204, r.text
    assert (await dapr.get(f"{STATE}/fw")).json() == (1 if sticky else 4)
    # A first-write delete of an existing key without an ETag: a conflict for the in-memory
    # store's rules (every daca store); daprd's SQLite and Redis stores delete.
    r = await dapr.delete(f"{STATE}/fw", params={"concurrency": "first-write"})
    if backend != "memory" and engine.name == "daprd":
        assert r.status_code == 204, r.text
    else:
        assert_mismatch(
            r, backend, code="ERR_STATE_DELETE", context="failed deleting state with key fw",
            memory="item already exists and no etag was passed",
            redis="failed to delete myapp||fw",
        )  # fmt: skip


async def test_unknown_options_are_500(dapr: httpx.AsyncClient) -> None:
    item = {"key": "o", "value": 1, "options": {"concurrency": "bogus"}}
    r = await save(dapr, item)
    assert_message(
        r, 500, "ERR_STATE_SAVE", f"{SAVE_FAILED}: unrecognized concurrency model 'bogus'"
    )
    r = await save(dapr, {"key": "o", "value": 1, "options": {"consistency": "always"}})
    message = f"{SAVE_FAILED}: unrecognized consistency model 'always'"
    assert_message(r, 500, "ERR_STATE_SAVE", message)
    r = await dapr.delete(f"{STATE}/o", params={"concurrency": "bogus"})
    message = "failed deleting state with key o: unrecognized concurrency model 'bogus'"
    assert_message(r, 500, "ERR_STATE_DELETE", message)
    assert (await dapr.get(f"{STATE}/o")).status_code == 204
    r = await save(dapr, {"key": "o", "value": 1, "options": {"consistency": "strong"}})
    assert r.status_code == 204, r.text


async def test_unknown_options_in_a_transaction(
    engine: Engine, dapr: httpx.AsyncClient, backend: str
) -> None:
    bogus = {"concurrency": "bogus"}
    for kind in ("upsert", "delete"):
        op = {"operation": kind, "request": {"key": "o", "value": 1, "options": bogus}}
        r = await dapr.post(f"{STATE}/transaction", json={"operations": [op]})
        # daca checks them on every store; daprd on SQLite, and on in-memory upserts only.
        checked = backend == "sqlite" or (backend == "memory" and kind == "upsert")
        if per_engine(engine, daca=True, daprd=checked):
            message = f"{TRANSACTION_FAILED}: unrecognized concurrency model 'bogus'"
            assert_message(r, 500, "ERR_STATE_TRANSACTION", message)
        else:
            assert r.status_code == 204, r.text


async def test_a_multi_item_save_is_item_by_item(dapr: httpx.AsyncClient, backend: str) -> None:
    assert (await save(dapr, {"key": "p", "value": 1})).status_code == 204
    current = await etag_of(dapr, "p")
    # Every failure an ETag error: all of them, behind one more prefix; the others are written.
    r = await save(dapr, {"key": "ok", "value": 1}, {"key": "p", "value": 2, "etag": "999"})
    assert_error(r, 409, "ERR_STATE_SAVE")
    message = r.json()["message"]
    why = f"state etag not match for key=myapp||p: current={current}, expect=999"
    inner = {"memory": f"{MISMATCH}: {why}", "sqlite": MISMATCH}.get(backend)
    if inner is not None:
        assert message == f"{SAVE_FAILED}: {MISMATCH}: {inner}", message
    else:
        assert message.startswith(f"{SAVE_FAILED}: {MISMATCH}: {MISMATCH}: "), message
        assert message.endswith("failed to set key myapp||p"), message
    assert (await dapr.get(f"{STATE}/ok")).json() == 1
    assert (await dapr.get(f"{STATE}/p")).json() == 1
    # Another failure: 500 with its message; the good item is written.
    bad_ttl = {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "x"}}
    r = await save(dapr, {"key": "good", "value": 2}, bad_ttl)
    assert_error(r, 500, "ERR_STATE_SAVE", 'parsing "x": invalid syntax')
    assert (await dapr.get(f"{STATE}/good")).json() == 2
    assert (await dapr.get(f"{STATE}/t")).status_code == 204


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


async def test_values_are_re_encoded_as_daprd_does(
    engine: Engine, dapr: httpx.AsyncClient, backend: str
) -> None:
    body = '[{"key": "v", "value": {"b": 1, "a": "<&>\u2028\\b \\ud800", "c": [{"z": null}]}}]'
    assert (await post_raw(dapr, STATE, body.encode())).status_code == 204
    r = await dapr.get(f"{STATE}/v")
    bulk = await dapr.post(f"{STATE}/bulk", json={"keys": ["v"]})
    std = '{"a":"\\u003c\\u0026\\u003e\\u2028\\b \ufffd","b":1,"c":[{"z":null}]}'
    if backend != "redis":
        # Go's encoding/json: members sorted; <, >, &, U+2028 escaped; a lone surrogate replaced.
        assert r.content == std.encode()
    else:
        # jsoniter, as daprd's Redis store: nothing escaped, members as given (daprd: in Go's
        # random map order).
        members = ['"b":1', '"a":"<&>\u2028\\u0008 \ufffd"', '"c":[{"z":null}]']
        if engine.name == "daca":
            assert r.content == ("{" + ",".join(members) + "}").encode()
        else:
            assert sorted(r.content.decode()[1:-1].split(",")) == sorted(members)
    # A bulk answer escapes the stored JSON as Go's encoder escapes a raw message.
    assert bulk.json()[0]["data"] == json.loads(std)
    assert b"\\u003c\\u0026\\u003e\\u2028" in bulk.content


async def test_numbers_keep_precision(
    engine: Engine, dapr: httpx.AsyncClient, backend: str
) -> None:
    body = b'[{"key": "n", "value": {"big": 12345678901234567890, "f": 0.12345678901234567}}]'
    r = await dapr.post(STATE, content=body, headers={"content-type": JSON})
    assert r.status_code == 204, r.text
    r = await dapr.get(f"{STATE}/n")
    bulk = await dapr.post(f"{STATE}/bulk", json={"keys": ["n"]})
    # daca keeps a number's digits; daprd goes through float64 (its Redis store, 6 decimals).
    if engine.name == "daca":
        assert r.content == b'{"big":12345678901234567890,"f":0.12345678901234567}'
        assert b'"data":{"big":12345678901234567890,"f":0.12345678901234567}' in bulk.content
    elif backend == "redis":
        assert r.json() == {"big": 12345678901234567000, "f": 0.123457}
        assert bulk.json()[0]["data"] == {"big": 12345678901234567000, "f": 0.123457}
    else:
        assert r.content == b'{"big":12345678901234567000,"f":0.12345678901234566}'
        assert b'"data":{"big":12345678901234567000,"f":0.12345678901234566}' in bulk.content
    assert (await post_raw(dapr, STATE, b'[{"key": "e", "value": 1.5e3}]')).status_code == 204
    r = await dapr.get(f"{STATE}/e")
    assert r.content == per_engine(engine, daca=b"1.5e3", daprd=b"1500")


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
    if backend == "redis":  # daprd's Redis store does not report the expiry
        assert "metadata.ttlExpireTime" not in r.headers
    else:
        expires = datetime.fromisoformat(r.headers["metadata.ttlExpireTime"].replace("Z", "+00:00"))
        assert expires - datetime.now(UTC) < timedelta(seconds=5)
        bulk = (await dapr.post(f"{STATE}/bulk", json={"keys": ["q"]})).json()
        assert bulk[0]["metadata"] == {"ttlExpireTime": r.headers["metadata.ttlExpireTime"]}

    async def gone() -> bool:
        codes = [(await dapr.get(f"{STATE}/{key}")).status_code for key in ("q", "m")]
        return codes == [204, 204]

    await eventually(gone, within=8)
    assert (await dapr.get(f"{STATE}/keep")).json() == 2


async def test_query_metadata_wins_over_item_metadata(
    request: pytest.FixtureRequest, dapr: httpx.AsyncClient, backend: str
) -> None:
    item = {"key": "qm", "value": 1, "metadata": {"ttlInSeconds": "0"}}
    assert (await save(dapr, item, **{"metadata.ttlInSeconds": "100"})).status_code == 204
    if backend == "redis":  # no ttlExpireTime there: read the TTL
        async with raw_redis(request.getfixturevalue("redis_url")) as client:
            assert 0 < await client.ttl("myapp||qm") <= 100
    else:
        assert "metadata.ttlExpireTime" in (await dapr.get(f"{STATE}/qm")).headers


TTL_ERRORS = {  # each daprd store parses ttlInSeconds its own way
    "memory": 'strconv.Atoi: parsing "abc": invalid syntax',
    "sqlite": "error parsing TTL: incorrect value for metadata 'ttlInSeconds': "
    'strconv.ParseInt: parsing "abc": invalid syntax',
    "redis": 'failed to parse ttl from metadata: strconv.ParseInt: parsing "abc": invalid syntax',
}


async def test_malformed_ttl_is_500(dapr: httpx.AsyncClient, backend: str) -> None:
    r = await save(dapr, {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "abc"}})
    assert_message(r, 500, "ERR_STATE_SAVE", f"{SAVE_FAILED}: {TTL_ERRORS[backend]}")
    r = await save(dapr, {"key": "t", "value": 1}, **{"metadata.ttlInSeconds": "abc"})
    assert_message(r, 500, "ERR_STATE_SAVE", f"{SAVE_FAILED}: {TTL_ERRORS[backend]}")
    op = {"operation": "upsert", "request": {"key": "t", "value": 1}}
    r = await dapr.post(
        f"{STATE}/transaction",
        json={"operations": [op]},
        params={"metadata.ttlInSeconds": "abc"},
    )
    message = f"{TRANSACTION_FAILED}: {TTL_ERRORS[backend]}"
    assert_message(r, 500, "ERR_STATE_TRANSACTION", message)
    r = await save(dapr, {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "-5"}})
    if backend == "sqlite":
        too_small = (
            "error parsing TTL: incorrect value for metadata 'ttlInSeconds': must be -1 or greater"
        )
        assert_message(r, 500, "ERR_STATE_SAVE", f"{SAVE_FAILED}: {too_small}")
    else:
        assert r.status_code == 204, r.text
        assert "metadata.ttlExpireTime" not in (await dapr.get(f"{STATE}/t")).headers
    r = await save(dapr, {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "-1"}})
    assert r.status_code == 204, r.text


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


async def test_bulk_get_with_data_and_etag(
    engine: Engine, dapr: httpx.AsyncClient, backend: str
) -> None:
    r = await save(dapr, {"key": "a", "value": {"n": 1}}, {"key": "b", "value": "two"})
    assert r.status_code == 204
    etag_a, etag_b = await etag_of(dapr, "a"), await etag_of(dapr, "b")
    r = await dapr.post(f"{STATE}/bulk", json={"keys": ["b", "missing", "a"], "parallelism": 2})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON
    assert r.content.endswith(b"]\n")  # Go's json.Encoder ends with a newline
    expected = [
        {"key": "b", "data": "two", "etag": etag_b},
        {"key": "missing"},
        {"key": "a", "data": {"n": 1}, "etag": etag_a},
    ]
    if backend == "sqlite" and engine.name == "daprd":  # the rows' order, then missing keys
        assert sorted(r.json()[:2], key=str) == sorted([expected[0], expected[2]], key=str)
        assert r.json()[2] == {"key": "missing"}
    else:  # daca: always in the order of the keys
        assert r.json() == expected
    r = await dapr.put(f"{STATE}/bulk", json={"keys": ["a"]})  # PUT works as POST
    assert r.status_code == 200, r.text
    assert r.json() == [{"key": "a", "data": {"n": 1}, "etag": etag_a}]
    r = await dapr.post(f"{STATE}/bulk", json={"keys": [""]})  # an empty key is just missing
    assert r.status_code == 200, r.text
    assert r.json() == [{"key": ""}]


MALFORMED_BULK = {
    "empty": (b"", "EOF"),
    "truncated": (b'{"keys": ["a"', "unexpected EOF"),
    "keys-string": (
        b'{"keys": "a"}',
        "json: cannot unmarshal string into Go struct field BulkGetRequest.keys of type []string",
    ),
    "keys-numbers": (
        b'{"keys": [1, 2]}',
        "json: cannot unmarshal number into Go struct field BulkGetRequest.keys of type string",
    ),
    "parallelism-float": (
        b'{"keys": ["a"], "parallelism": 1.5}',
        "json: cannot unmarshal number 1.5 into Go struct field BulkGetRequest.parallelism"
        " of type int",
    ),
    "parallelism-exponent": (
        b'{"keys": ["a"], "parallelism": 1e3}',
        "json: cannot unmarshal number 1e3 into Go struct field BulkGetRequest.parallelism"
        " of type int",
    ),
    "parallelism-beyond-int64": (
        b'{"keys": ["a"], "parallelism": 9223372036854775808}',
        "json: cannot unmarshal number 9223372036854775808 into Go struct field"
        " BulkGetRequest.parallelism of type int",
    ),
    "parallelism-string": (
        b'{"keys": ["a"], "parallelism": "2"}',
        "json: cannot unmarshal string into Go struct field BulkGetRequest.parallelism of type int",
    ),
    "metadata-number": (
        b'{"keys": ["a"], "metadata": {"x": 1}}',
        "json: cannot unmarshal number into Go struct field BulkGetRequest.metadata of type string",
    ),
    "metadata-array": (
        b'{"keys": ["a"], "metadata": ["x"]}',
        "json: cannot unmarshal array into Go struct field BulkGetRequest.metadata"
        " of type map[string]string",
    ),
    "array": (b'["a"]', "json: cannot unmarshal array into Go value of type http.BulkGetRequest"),
}


async def test_bulk_get_empty_and_malformed(engine: Engine, dapr: httpx.AsyncClient) -> None:
    for empty in (b'{"keys": []}', b"{}", b"null", b'{"keys": null}'):
        r = await post_raw(dapr, f"{STATE}/bulk", empty)
        assert r.status_code == 200, (empty, r.text)
        assert r.content == b"[]\n"
    prefix = "failed deserializing HTTP body: "
    for name, (body, message) in MALFORMED_BULK.items():
        r = await post_raw(dapr, f"{STATE}/bulk", body)
        assert r.status_code == 400, name
        assert_message(r, 400, "ERR_MALFORMED_REQUEST", prefix + message)
    r = await post_raw(dapr, f"{STATE}/bulk", b'{"keys": ["a",]}')
    daprd = "invalid character ']' looking for beginning of value"
    message = per_engine(engine, daca="Expecting value: line 1 column 15 (char 14)", daprd=daprd)
    assert_message(r, 400, "ERR_MALFORMED_REQUEST", prefix + message)


# --- delete --------------------------------------------------------------------------------------


async def test_delete_plain_and_with_if_match(dapr: httpx.AsyncClient, backend: str) -> None:
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
    why = f"state etag not match for key=myapp||d: current={await etag_of(dapr, 'd')}"
    assert_mismatch(
        r, backend, code="ERR_STATE_DELETE", context="failed deleting state with key d",
        memory=f"{why}, expect={stale}", redis="failed to delete myapp||d",
    )  # fmt: skip
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
        {"operation": "upsert", "request": {"KEY": "cased", "Value": 3}},  # as mapstructure
    ]
    r = await dapr.post(f"{STATE}/transaction", json={"operations": ops})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert (await dapr.get(f"{STATE}/new")).json() == {"v": 2}
    assert (await dapr.get(f"{STATE}/old")).status_code == 204
    assert (await dapr.get(f"{STATE}/cased")).json() == 3
    for empty in (b'{"operations": []}', b"{}", b"null", b'{"operations": null}'):
        r = await post_raw(dapr, f"{STATE}/transaction", empty)
        assert r.status_code == 204, (empty, r.text)


async def test_transaction_metadata_from_the_query_only(
    dapr: httpx.AsyncClient, backend: str
) -> None:
    """An operation gets the query's ``metadata.*``, not the body's ``metadata`` (as daprd)."""
    op = {"operation": "upsert", "request": {"key": "body", "value": 1}}
    body = {"operations": [op], "metadata": {"ttlInSeconds": "100"}}
    assert (await dapr.post(f"{STATE}/transaction", json=body)).status_code == 204
    op = {"operation": "upsert", "request": {"key": "query", "value": 1}}
    r = await dapr.post(
        f"{STATE}/transaction",
        json={"operations": [op]},
        params={"metadata.ttlInSeconds": "100"},
    )
    assert r.status_code == 204, r.text
    if backend == "redis":
        return  # no ttlExpireTime there; the Redis layout test reads TTLs directly
    assert "metadata.ttlExpireTime" not in (await dapr.get(f"{STATE}/body")).headers
    assert "metadata.ttlExpireTime" in (await dapr.get(f"{STATE}/query")).headers


MALFORMED_TRANSACTIONS = {
    "empty": (b"", "EOF"),
    "truncated": (b'{"operations": [', "unexpected EOF"),
    "operations-object": (
        b'{"operations": {}}',
        "json: cannot unmarshal object into Go struct field stateTransactionRequestBody.operations"
        " of type []http.stateTransactionRequestBodyOperation",
    ),
    "operation-number": (
        b'{"operations": [5]}',
        "json: cannot unmarshal number into Go struct field stateTransactionRequestBody.operations"
        " of type http.stateTransactionRequestBodyOperation",
    ),
    "kind-number": (
        b'{"operations": [{"operation": 5, "request": {"key": "q"}}]}',
        "json: cannot unmarshal number into Go struct field"
        " stateTransactionRequestBodyOperation.operations.operation of type string",
    ),
    "metadata-number": (
        b'{"operations": [], "metadata": {"a": 1}}',
        "json: cannot unmarshal number into Go struct field stateTransactionRequestBody.metadata"
        " of type string",
    ),
    "metadata-array": (
        b'{"operations": [], "metadata": ["a"]}',
        "json: cannot unmarshal array into Go struct field stateTransactionRequestBody.metadata"
        " of type map[string]string",
    ),
    "array": (
        b"[]",
        "json: cannot unmarshal array into Go value of type http.stateTransactionRequestBody",
    ),
    "request-string": (
        b'{"operations": [{"operation": "upsert", "request": "x"}]}',
        "'' expected a map, got 'string'",
    ),
    "request-fields": (
        b'{"operations": [{"operation": "delete", "request":'
        b' {"key": "k", "etag": 1e6, "metadata": {"a": [1, true]}, "options": "x"}}]}',
        "3 error(s) decoding:\n\n"
        "* 'ETag' expected type 'string', got unconvertible type 'float64', value: '1e+06'\n"
        "* 'Metadata[a]' expected type 'string', got unconvertible type '[]interface {}',"
        " value: '[1 true]'\n"
        "* 'Options' expected a map, got 'string'",
    ),
    "request-ttl-number": (
        b'{"operations": [{"operation": "upsert", "request":'
        b' {"key": "k", "metadata": {"ttlInSeconds": 5}, "options": {"concurrency": 1}}}]}',
        "2 error(s) decoding:\n\n"
        "* 'Metadata[ttlInSeconds]' expected type 'string', got unconvertible type 'float64',"
        " value: '5'\n"
        "* 'Options.Concurrency' expected type 'string', got unconvertible type 'float64',"
        " value: '1'",
    ),
    "request-metadata-array": (
        b'{"operations": [{"operation": "upsert", "request": {"key": "k", "metadata": ["a"]}}]}',
        "1 error(s) decoding:\n\n* 'Metadata' expected a map, got 'slice'",
    ),
}


async def test_transaction_bad_requests_are_400(engine: Engine, dapr: httpx.AsyncClient) -> None:
    ops = [
        {"operation": "upsert", "request": {"key": "x", "value": 1}},
        {"operation": "merge", "request": {"key": "y", "value": 1}},
    ]
    r = await dapr.post(f"{STATE}/transaction", json={"operations": ops})
    message = "operation type merge not supported"
    assert_message(r, 400, "ERR_NOT_SUPPORTED_STATE_OPERATION", message)
    r = await dapr.post(f"{STATE}/transaction", json={"operations": [{"request": {"key": "y"}}]})
    message = "operation type  not supported"
    assert_message(r, 400, "ERR_NOT_SUPPORTED_STATE_OPERATION", message)
    prefix = "failed deserializing HTTP body: "
    for name, (body, message) in MALFORMED_TRANSACTIONS.items():
        r = await post_raw(dapr, f"{STATE}/transaction", body)
        assert r.status_code == 400, name
        assert_message(r, 400, "ERR_MALFORMED_REQUEST", prefix + message)
    r = await post_raw(dapr, f"{STATE}/transaction", b'{"operations": [}')
    daprd = "invalid character '}' looking for beginning of value"
    message = per_engine(engine, daca="Expecting value: line 1 column 17 (char 16)", daprd=daprd)
    assert_message(r, 400, "ERR_MALFORMED_REQUEST", prefix + message)
    assert (await dapr.get(f"{STATE}/x")).status_code == 204


async def test_transaction_operation_without_key(engine: Engine, dapr: httpx.AsyncClient) -> None:
    """daca refuses it as daprd's save does; daprd's transaction writes the key "myapp||"."""
    for request in ({"value": 1}, None):
        op = {"operation": "upsert", "request": request}
        r = await dapr.post(f"{STATE}/transaction", json={"operations": [op]})
        if engine.name == "daprd":
            assert r.status_code == 204, r.text
        else:
            assert_message(r, 400, "ERR_MALFORMED_REQUEST", '"key" is a required field')
    bulk = (await dapr.post(f"{STATE}/bulk", json={"keys": [""]})).json()
    found = [{k: v for k, v in entry.items() if k != "etag"} for entry in bulk]
    assert found == per_engine(engine, daca=[{"key": ""}], daprd=[{"key": "", "data": None}])


async def test_transaction_etag_mismatch_is_500(
    engine: Engine, dapr: httpx.AsyncClient, backend: str
) -> None:
    r = await save(dapr, {"key": "a", "value": 1}, {"key": "b", "value": 1})
    assert r.status_code == 204
    stale = await etag_of(dapr, "a")
    assert (await save(dapr, {"key": "a", "value": 2})).status_code == 204
    current = await etag_of(dapr, "a")
    ops = [
        {"operation": "upsert", "request": {"key": "c", "value": 3}},
        {"operation": "delete", "request": {"key": "b"}},
        {"operation": "upsert", "request": {"key": "a", "value": 99, "etag": stale}},
    ]
    r = await dapr.post(f"{STATE}/transaction", json={"operations": ops})
    assert_error(r, 500, "ERR_STATE_TRANSACTION")
    message = r.json()["message"]
    if backend == "memory":
        why = f"state etag not match for key=myapp||a: current={current}, expect={stale}"
        assert message == f"{TRANSACTION_FAILED}: {MISMATCH}: {why}"
    elif backend == "sqlite":
        assert message == f"{TRANSACTION_FAILED}: {MISMATCH}"
    else:  # daprd passes its MULTI's error on as it is
        assert message.endswith("failed to set key myapp||a"), message
        daca = f"{TRANSACTION_FAILED}: {MISMATCH}: failed to set key myapp||a"
        assert (message == daca) == per_engine(engine, daca=True, daprd=False)
    # All or nothing on every daca store; daprd's Redis store applies the other operations.
    applied = backend == "redis" and engine.name == "daprd"
    assert (await dapr.get(f"{STATE}/c")).status_code == (200 if applied else 204)
    assert (await dapr.get(f"{STATE}/b")).status_code == (204 if applied else 200)
    assert (await dapr.get(f"{STATE}/a")).json() == 2


# --- keyPrefix -----------------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_stores_app_prefixed_hash(
    engine: Engine, redis_url: str, tmp_path: Path
) -> None:
    resources = write_components(tmp_path / "components", "redis", redis_address=redis_url)
    config = sidecar_config(tmp_path, resources)
    async with engine.sidecar(config) as sidecar, client_for(sidecar) as dapr:
        assert (await save(dapr, {"key": "k", "value": {"a": 1}})).status_code == 204
        etag = await etag_of(dapr, "k")
        bulk = (await dapr.post(f"{STATE}/bulk", json={"keys": ["k"]})).json()
        ttl = {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "100"}}
        assert (await save(dapr, ttl)).status_code == 204
        assert "metadata.ttlExpireTime" not in (await dapr.get(f"{STATE}/t")).headers
    assert bulk[0]["key"] == "k"
    async with raw_redis(redis_url) as client:
        assert await client.exists("k") == 0
        stored = await client.hgetall("myapp||k")
        assert 0 < await client.ttl("myapp||t") <= 100
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
    engine: Engine, request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    resources = shared_backend(request, backend, tmp_path)
    config_a = sidecar_config(tmp_path, resources, app_id="caller")
    config_b = sidecar_config(tmp_path, resources, app_id="callee")
    async with two_sidecars(engine, config_a, config_b) as (a, b):
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
    expected = {"caller||k", "k", "s-name||k", "myprefix||k"}
    assert await stored_keys(request, backend, resources) == expected
