"""``/v1.0/state``: save, get, bulk get, delete and transactions (dapr-http-api.md §1)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daca.runtime.api.common import RuntimeContext, context, json_body, malformed, request_metadata
from daca.runtime.errors import DaprError, ETagInvalidError, ETagMismatchError, StoreError
from daca.runtime.state.base import Concurrency, DeleteRequest, Operation, SetRequest, StateStore

_CONCURRENCY: dict[str, Concurrency] = {"first-write": "first-write", "last-write": "last-write"}


@contextlib.contextmanager
def store_errors(code: str, context: str) -> Iterator[None]:
    """A backend error as daprd answers it under ``code``: 409 for an ETag mismatch, 400 for an
    invalid ETag, 500 for anything else (transactions answer 500 for all, see below)."""
    try:
        yield
    except ETagMismatchError as exc:
        message = f"{context}: possible etag mismatch. error from state store: {exc}"
        raise DaprError(409, code, message) from exc
    except ETagInvalidError as exc:
        raise DaprError(400, code, f"{context}: invalid etag value: {exc}") from exc
    except StoreError as exc:
        raise DaprError(500, code, f"{context}: {exc}") from exc


def _store(request: Request) -> tuple[RuntimeContext, str, StateStore]:
    ctx, name = context(request), request.path_params["store"]
    stores = ctx.components.state_stores
    if not stores:
        raise DaprError(500, "ERR_STATE_STORE_NOT_CONFIGURED", "state store is not configured")
    if name not in stores:
        raise DaprError(400, "ERR_STATE_STORE_NOT_FOUND", f"state store {name} is not found")
    return ctx, name, stores[name]


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise malformed('"key" is a required field')
    if "||" in key:
        raise malformed(f"input key/keyPrefix '{key}' can't contain '||'")
    return key


def _ttl(metadata: Mapping[str, str]) -> int | None:
    raw = metadata.get("ttlInSeconds")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise malformed(f"incorrect type for metadata ttlInSeconds: {raw!r}") from None


def _set_request(item: object, prefix: str, query_metadata: Mapping[str, str]) -> SetRequest:
    if not isinstance(item, dict):
        raise malformed("failed deserializing HTTP body: each item must be an object")
    key = _check_key(item.get("key"))
    etag = item.get("etag")
    if etag is not None and not isinstance(etag, str):
        raise malformed("failed deserializing HTTP body: etag must be a string")
    options = item.get("options") or {}
    metadata = {
        **query_metadata,
        **{str(k): str(v) for k, v in (item.get("metadata") or {}).items()},
    }
    return SetRequest(
        key=prefix + key,
        value=json.dumps(item.get("value"), separators=(",", ":"), ensure_ascii=False).encode(),
        etag=etag or None,
        concurrency=_CONCURRENCY.get(str(options.get("concurrency", ""))),
        ttl_seconds=_ttl(metadata),
    )


async def save_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    items = await json_body(request)
    if not isinstance(items, list):
        raise malformed("failed deserializing HTTP body: expected an array of state items")
    prefix, metadata = ctx.components.state_prefix(name), request_metadata(request)
    requests = [_set_request(item, prefix, metadata) for item in items]
    with store_errors("ERR_STATE_SAVE", f"failed saving state in state store {name}"):
        await asyncio.gather(*(store.set(req) for req in requests))
    return Response(status_code=204)


async def get_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    key = _check_key(request.path_params["key"])
    with store_errors("ERR_STATE_GET", f"fail to get {key} from state store {name}"):
        item = await store.get(ctx.components.state_prefix(name) + key)
    if item is None:
        return Response(status_code=204)
    headers = {"ETag": item.etag, **{f"metadata.{k}": v for k, v in item.metadata.items()}}
    return Response(item.value, headers=headers, media_type="application/json")


async def bulk_get_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    body = await json_body(request)
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise malformed("failed deserializing HTTP body: 'keys' must be an array of strings")
    prefix = ctx.components.state_prefix(name)
    stored_keys = [prefix + _check_key(key) for key in keys]
    with store_errors("ERR_STATE_BULK_GET", f"failed getting state in bulk from {name}"):
        items = await store.bulk_get(stored_keys)
    return JSONResponse([_bulk_entry(key, item) for key, item in zip(keys, items, strict=True)])


def _bulk_entry(key: str, item: Any) -> dict[str, Any]:
    if item is None:
        return {"key": key}
    entry: dict[str, Any] = {"key": key, "data": json.loads(item.value), "etag": item.etag}
    if item.metadata:
        entry["metadata"] = item.metadata
    return entry


async def delete_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    key = _check_key(request.path_params["key"])
    etag = request.headers.get("if-match")
    concurrency = _CONCURRENCY.get(request.query_params.get("concurrency", ""))
    delete = DeleteRequest(ctx.components.state_prefix(name) + key, etag, concurrency)
    with store_errors("ERR_STATE_DELETE", f"failed deleting state with key {key}"):
        await store.delete(delete)
    return Response(status_code=204)


def _operation(raw: object, prefix: str, metadata: Mapping[str, str]) -> Operation:
    if not isinstance(raw, dict):
        raise malformed("failed deserializing HTTP body: each operation must be an object")
    kind, request = raw.get("operation"), raw.get("request")
    if kind not in ("upsert", "delete"):
        raise DaprError(
            400, "ERR_NOT_SUPPORTED_STATE_OPERATION", f"operation type {kind} not supported"
        )
    if not isinstance(request, dict):
        raise malformed("failed deserializing HTTP body: operation without a request")
    if kind == "upsert":
        return _set_request(request, prefix, metadata)
    etag = request.get("etag")
    concurrency = _CONCURRENCY.get(str((request.get("options") or {}).get("concurrency", "")))
    return DeleteRequest(prefix + _check_key(request.get("key")), etag or None, concurrency)


async def transact_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    body = await json_body(request)
    operations = body.get("operations") if isinstance(body, dict) else None
    if not isinstance(operations, list):
        raise malformed("failed deserializing HTTP body: 'operations' must be an array")
    metadata = {
        **request_metadata(request),
        **{str(k): str(v) for k, v in (body.get("metadata") or {}).items()},
    }
    prefix = ctx.components.state_prefix(name)
    ops = [_operation(op, prefix, metadata) for op in operations]
    if not ops:
        return Response(status_code=204)
    try:
        await store.transact(ops)
    except StoreError as exc:
        raise DaprError(
            500, "ERR_STATE_TRANSACTION", f"error while executing state transaction: {exc}"
        ) from exc
    return Response(status_code=204)


routes = [
    Route("/v1.0/state/{store}", save_state, methods=["POST", "PUT"]),
    Route("/v1.0/state/{store}/bulk", bulk_get_state, methods=["POST", "PUT"]),
    Route("/v1.0/state/{store}/transaction", transact_state, methods=["POST", "PUT"]),
    Route("/v1.0/state/{store}/{key}", get_state, methods=["GET"]),
    Route("/v1.0/state/{store}/{key}", delete_state, methods=["DELETE"]),
]
