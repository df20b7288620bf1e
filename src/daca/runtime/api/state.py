"""``/v1.0/state``: save, get, bulk get, delete and transactions (dapr-http-api.md §1).

A request is read as daprd reads it: its JSON body decoded into daprd's Go types, declared as
pydantic models (:mod:`.statebodies`, :mod:`.gomodels`), a transaction operation's
``request`` then as ``mapstructure`` does it (:mod:`daca.runtime.mapstructure`). Values are
stored as daprd's store of the same type re-encodes them (:mod:`daca.runtime.gojson`), except
that a number keeps the digits the app sent. Errors carry daprd's status, code, message and
``details`` (:mod:`.stateerrors`); a store's own checks (options, ``ttlInSeconds``, ETags) are
the store's, word for word (see :meth:`StateStore.parse_ttl` and the backends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daca.runtime import mapstructure
from daca.runtime.api.common import RuntimeContext, context, request_metadata
from daca.runtime.api.statebodies import (
    BULK_BODY,
    DESERIALIZING,
    SAVE_BODY,
    TRANSACTION_BODY,
    TransactionOperation,
    read_body_as,
)
from daca.runtime.api.stateerrors import bulk_error, illegal_key, store_failure, store_missing
from daca.runtime.errors import (
    MalformedRequest,
    OutboxPublishFailed,
    StateBulkGetFailed,
    StateDeleteFailed,
    StateGetFailed,
    StateOperationNotSupported,
    StateSaveFailed,
    StateTransactionFailed,
    StoreError,
)
from daca.runtime.gojson import ValueEncoding, encode_value, go_json, go_string, raw_json
from daca.runtime.outbox import PROJECTION, Outbox, OutboxUpsert
from daca.runtime.state.base import Concurrency, DeleteRequest, SetRequest, StateItem, StateStore
from daca.runtime.state.rules import check_options

JSON = "application/json"
_CONCURRENCY: dict[str, Concurrency] = {"first-write": "first-write", "last-write": "last-write"}


def _store(request: Request) -> tuple[RuntimeContext, str, StateStore]:
    ctx, name = context(request), request.path_params["store"]
    stores = ctx.components.state_stores
    if name not in stores:
        raise store_missing(name, ctx.app_id, configured=bool(stores))
    return ctx, name, stores[name]


def _stored_key(ctx: RuntimeContext, store: str, key: str, *, field: str) -> str:
    """``key`` with the store's ``keyPrefix``; a key with ``||`` is refused."""
    if "||" in key:
        raise illegal_key(store, key, field)
    return ctx.components.state_prefix(store) + key


@dataclass(frozen=True, slots=True)
class _Write:
    """One save, upsert or delete, validated as daprd's HTTP layer does."""

    key: str  # as stored (prefixed)
    value: bytes | None  # None: a delete
    etag: str
    metadata: Mapping[str, str]
    concurrency: str
    consistency: str

    def _check(self) -> Concurrency | None:
        check_options(self.concurrency, self.consistency)
        return _CONCURRENCY.get(self.concurrency)

    def set_request(self, store: StateStore) -> SetRequest:
        """The backend request; the store's checks (options, TTL) raise :class:`StoreError`."""
        assert self.value is not None
        concurrency = self._check()
        ttl = store.parse_ttl(self.metadata.get("ttlInSeconds", ""))
        return SetRequest(self.key, self.value, self.etag or None, concurrency, ttl)

    def delete_request(self) -> DeleteRequest:
        return DeleteRequest(self.key, self.etag or None, self._check())

    def operation(self, store: StateStore) -> SetRequest | DeleteRequest:
        return self.delete_request() if self.value is None else self.set_request(store)


async def save_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    items = await read_body_as(request, SAVE_BODY, prefixed=False)
    query = request_metadata(request)
    writes = []
    for item in items:
        if not item.key:
            raise MalformedRequest('"key" is a required field')
        writes.append(
            _Write(
                key=_stored_key(ctx, name, item.key, field=item.key),
                value=encode_value(item.value, store.value_encoding),
                etag=item.etag,
                metadata={**item.metadata, **query},  # the query wins, as in daprd
                concurrency=item.options.concurrency,
                consistency=item.options.consistency,
            )
        )

    # Item by item, as daprd: one failing item does not stop the others.
    requests: list[SetRequest] = []
    results: list[BaseException | None] = []
    for write in writes:
        try:
            requests.append(write.set_request(store))
        except StoreError as refused:
            results.append(refused)
    results += await store.bulk_set(requests)
    errors: list[StoreError] = []
    for result in results:
        if isinstance(result, StoreError):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result
    if errors:
        exc = errors[0] if len(writes) == 1 else bulk_error(errors)
        prefix = f"failed saving state in state store {name}: "
        raise store_failure(StateSaveFailed, exc, prefix) from exc
    return Response(status_code=204)


async def get_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    key = request.path_params["key"]
    stored_key = _stored_key(ctx, name, key, field=key)
    try:
        item = await store.get(stored_key)
    except StoreError as exc:
        prefix = f"fail to get {key} from state store {name}: "
        raise store_failure(StateGetFailed, exc, prefix) from exc
    if item is None:
        return Response(status_code=204)
    headers = {"ETag": item.etag, **{f"metadata.{k}": v for k, v in item.metadata.items()}}
    return Response(item.value, headers=headers, media_type=JSON)


async def bulk_get_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    keys = (await read_body_as(request, BULK_BODY, prefixed=True)).keys
    stored_keys = [_stored_key(ctx, name, key, field=key) for key in keys]
    try:
        items = await store.bulk_get(stored_keys) if keys else []
    except StoreError as exc:
        raise store_failure(StateBulkGetFailed, exc) from exc
    entries = ",".join(_bulk_entry(key, item) for key, item in zip(keys, items, strict=True))
    return Response(f"[{entries}]\n".encode(), media_type=JSON)  # json.Encoder's newline


def _bulk_entry(key: str, item: StateItem | None) -> str:
    parts = [f'"key":{go_string(key)}']
    if item is not None:
        if item.value:
            parts.append(f'"data":{raw_json(item.value)}')
        parts.append(f'"etag":{go_string(item.etag)}')
        if item.metadata:
            parts.append(f'"metadata":{go_json(dict(item.metadata))}')
    return "{" + ",".join(parts) + "}"


async def delete_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    key = request.path_params["key"]
    query = request.query_params
    write = _Write(
        key=_stored_key(ctx, name, key, field=key),
        value=None,
        etag=request.headers.get("if-match", ""),
        metadata={},
        concurrency=query.get("concurrency", ""),
        consistency=query.get("consistency", ""),
    )
    try:
        await store.delete(write.delete_request())
    except StoreError as exc:
        prefix = f"failed deleting state with key {key}: "
        raise store_failure(StateDeleteFailed, exc, prefix) from exc
    return Response(status_code=204)


def _transaction_write(
    ctx: RuntimeContext,
    store: str,
    operation: TransactionOperation,
    query: Mapping[str, str],
    encoding: ValueEncoding,
) -> _Write:
    kind = operation.operation
    if kind not in ("upsert", "delete"):
        raise StateOperationNotSupported(f"operation type {kind} not supported")
    fields = mapstructure.SET_REQUEST if kind == "upsert" else mapstructure.DELETE_REQUEST
    try:
        request = mapstructure.decode(operation.request, fields)
    except mapstructure.MapstructureError as exc:
        raise MalformedRequest(f"{DESERIALIZING}{exc}") from None
    key = request["Key"]
    if not key:  # daprd would write the key "<prefix>" (see docs/runtime.md)
        raise MalformedRequest('"key" is a required field')
    options = request["Options"]
    return _Write(
        key=_stored_key(ctx, store, key, field=""),
        value=encode_value(request["Value"], encoding) if kind == "upsert" else None,
        etag=request["ETag"],
        metadata={**request["Metadata"], **query},  # not the body's metadata, as in daprd
        concurrency=options["Concurrency"],
        consistency=options["Consistency"],
    )


async def transact_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    operations = (await read_body_as(request, TRANSACTION_BODY, prefixed=True)).operations
    if not operations:
        return Response(status_code=204)
    query, encoding = request_metadata(request), store.value_encoding
    writes = [_transaction_write(ctx, name, op, query, encoding) for op in operations]
    try:
        backend_ops = [write.operation(store) for write in writes]
        if ctx.outbox is not None and ctx.outbox.enabled(name):
            backend_ops = await _through_outbox(ctx.outbox, name, writes, backend_ops, request)
        await store.transact(backend_ops)
    except StoreError as exc:
        prefix = "error while executing state transaction: "
        raise store_failure(StateTransactionFailed, exc, prefix) from exc
    return Response(status_code=204)


async def _through_outbox(
    outbox: Outbox,
    store: str,
    writes: list[_Write],
    operations: list[SetRequest | DeleteRequest],
    request: Request,
) -> list[SetRequest | DeleteRequest]:
    """The transaction's operations once the outbox has published its upserts' internal
    messages: projections left out, one marker per published upsert added (``outbox``)."""
    upserts = [
        OutboxUpsert(
            key=write.key,
            value=write.value,
            content_type=write.metadata.get("contentType"),
            projection=write.metadata.get(PROJECTION, "").lower() == "true",
            metadata={k: v for k, v in write.metadata.items() if k != PROJECTION},
        )
        for write in writes
        if write.value is not None
    ]
    try:
        projected, markers = await outbox.prepare(
            store, upserts, request.headers.get("traceparent", "")
        )
    except StoreError as exc:
        prefix = "error while publishing outbox messages: "
        raise store_failure(OutboxPublishFailed, exc, prefix) from exc
    kept = [
        op
        for op, write in zip(operations, writes, strict=True)
        if not (write.key in projected and write.metadata.get(PROJECTION, "").lower() == "true")
    ]
    return [*kept, *markers]


routes = [
    Route("/v1.0/state/{store}", save_state, methods=["POST", "PUT"]),
    Route("/v1.0/state/{store}/bulk", bulk_get_state, methods=["POST", "PUT"]),
    Route("/v1.0/state/{store}/transaction", transact_state, methods=["POST", "PUT"]),
    Route("/v1.0/state/{store}/{key}", get_state, methods=["GET"]),
    Route("/v1.0/state/{store}/{key}", delete_state, methods=["DELETE"]),
]
