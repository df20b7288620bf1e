"""``/v1.0/state``: save, get, bulk get, delete and transactions (dapr-http-api.md §1).

A request is read as daprd reads it. Its JSON body is decoded into daprd's Go types: only the
first JSON value counts, field names match case-insensitively, unknown fields are ignored,
``null`` is the zero value, and a value of the wrong type is ``ERR_MALFORMED_REQUEST`` with Go's
message. A transaction operation's ``request`` is then decoded as ``mapstructure`` does it.
Values are stored as daprd's store of the same type re-encodes them (``value_encoding``), except
that a number keeps the digits the app sent. Errors carry daprd's status, code, message
and ``details``; a store's own checks (options, ``ttlInSeconds``, ETags) are the store's, word
for word (see :meth:`StateStore.parse_ttl` and the backends).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daca.runtime.api.common import RuntimeContext, context, malformed, request_metadata
from daca.runtime.errors import DaprError, ETagInvalidError, ETagMismatchError, StoreError
from daca.runtime.outbox import PROJECTION, Outbox, OutboxUpsert
from daca.runtime.state.base import (
    Concurrency,
    DeleteRequest,
    SetRequest,
    StateItem,
    StateStore,
)
from daca.runtime.state.rules import check_options

JSON = "application/json"
_CONCURRENCY: dict[str, Concurrency] = {"first-write": "first-write", "last-write": "last-write"}
_INT64 = range(-(2**63), 2**63)
_SURROGATE = re.compile("[\ud800-\udfff]")

# --- reading a body: the first JSON value, numbers kept as text ----------------------------------


class _Number:
    """A JSON number whose text Python would not write back as it was sent (``1.5e3``, ``-0``,
    ``1E400``): kept as that text (daprd turns every number into a float64)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _BodyError(Exception):
    """The body is not JSON (daprd's "EOF" and "unexpected EOF", else Python's parser's words)."""


_CONSTANTS = {  # Python's json accepts these; Go's scanner stops at them
    "NaN": "invalid character 'N' looking for beginning of value",
    "Infinity": "invalid character 'I' looking for beginning of value",
    "-Infinity": "invalid character 'I' in numeric literal",
}


def _reject_constant(name: str) -> Any:
    raise _BodyError(_CONSTANTS[name])


@dataclass
class _Parsed:
    value: Any
    overflow: bool  # a number beyond float64 (an error once its place is known)


def _parse(body: bytes) -> _Parsed:
    """The first JSON value of ``body``; Go's ``json.Decoder`` ignores whatever follows it."""
    overflow = False

    def parse_float(text: str) -> float | _Number:
        nonlocal overflow
        number = float(text)
        overflow = overflow or not math.isfinite(number)
        return number if repr(number) == text else _Number(text)

    def parse_int(text: str) -> int | _Number:
        nonlocal overflow
        if len(text) < 300 and text != "-0":  # int() has a digit limit; a float64 has one too
            return int(text)
        overflow = overflow or not math.isfinite(float(text))
        return _Number(text)

    decoder = json.JSONDecoder(
        parse_float=parse_float, parse_int=parse_int, parse_constant=_reject_constant
    )
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise _BodyError("EOF")
    try:
        value, _ = decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text) or exc.msg.startswith("Unterminated string"):
            raise _BodyError("unexpected EOF") from None
        raise _BodyError(str(exc)) from None
    return _Parsed(value, overflow)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | _Number) and not isinstance(value, bool)


def _number_text(value: Any) -> str:
    return value.text if isinstance(value, _Number) else repr(value)


def _clean(text: str) -> str:
    """``text`` with lone surrogates (``"\\ud800"``) replaced by U+FFFD, as Go decodes them."""
    return _SURROGATE.sub("\ufffd", text)


# --- decoding into daprd's Go types (encoding/json) ----------------------------------------------

GoKind = Literal["string", "int", "any", "map", "list", "struct"]
ValueEncoding = Literal["std", "fastest"]


@dataclass(frozen=True, slots=True)
class _Go:
    """A Go type a body is decoded into, named as Go prints it."""

    name: str
    kind: GoKind
    element: _Go | None = None
    fields: tuple[tuple[str, _Go], ...] = ()  # a struct's fields by JSON name

    @property
    def struct_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def field(self, key: str) -> tuple[str, _Go] | None:
        """The field ``key`` names: the exact JSON name, else one equal ignoring case."""
        for name, go in self.fields:
            if name == key:
                return name, go
        folded = key.lower()
        return next(((n, go) for n, go in self.fields if n.lower() == folded), None)

    def zero(self) -> Any:
        if self.kind == "string":
            return ""
        if self.kind == "int":
            return 0
        if self.kind == "map":
            return {}
        if self.kind == "list":
            return []
        if self.kind == "struct":
            return {name: go.zero() for name, go in self.fields}
        return None


_STRING = _Go("string", "string")
_STRING_MAP = _Go("map[string]string", "map", _STRING)
_ANY = _Go("interface {}", "any")
_FLOAT64 = _Go("float64", "any")
_OPTIONS = (("Concurrency", _STRING), ("Consistency", _STRING))  # no JSON tags
_SET_REQUEST = _Go(
    "state.SetRequest",
    "struct",
    fields=(
        ("key", _STRING),
        ("value", _ANY),
        ("etag", _STRING),
        ("metadata", _STRING_MAP),
        ("options", _Go("state.SetStateOption", "struct", fields=_OPTIONS)),
        ("contentType", _STRING),
    ),
)
_SAVE_BODY = _Go("[]state.SetRequest", "list", _SET_REQUEST)
_BULK_BODY = _Go(
    "http.BulkGetRequest",
    "struct",
    fields=(
        ("metadata", _STRING_MAP),
        ("keys", _Go("[]string", "list", _STRING)),
        ("parallelism", _Go("int", "int")),
    ),
)
_OPERATION = _Go(
    "http.stateTransactionRequestBodyOperation",
    "struct",
    fields=(("operation", _STRING), ("request", _ANY)),
)
_TRANSACTION_BODY = _Go(
    "http.stateTransactionRequestBody",
    "struct",
    fields=(
        ("operations", _Go("[]http.stateTransactionRequestBodyOperation", "list", _OPERATION)),
        ("metadata", _STRING_MAP),
    ),
)


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "number"
    return "array" if isinstance(value, list) else "object"


class _GoDecoder:
    """``encoding/json`` into a :class:`_Go` type: a mistyped value is left at its zero value
    and decoding goes on; :attr:`error` is the first mistake, in Go's words. ``overflow``: look
    for the number beyond float64 in ``interface{}`` values (else they are taken as they are)."""

    def __init__(self, *, overflow: bool = False) -> None:
        self.error: str | None = None
        self.overflow = overflow

    def decode(self, value: Any, go: _Go, struct: str = "", path: tuple[str, ...] = ()) -> Any:
        if value is None:
            return go.zero()
        if go.kind == "any":
            return self._any(value, struct, path) if self.overflow else value
        if go.kind == "string" and isinstance(value, str):
            return _clean(value)
        if go.kind == "int" and _is_number(value):
            text = _number_text(value)
            if text.lstrip("-").isdigit() and int(text) in _INT64:
                return int(text)
            return self._fail(f"number {text}", go, struct, path)
        if go.kind == "map" and isinstance(value, dict):
            assert go.element is not None
            return {_clean(k): self.decode(v, go.element, struct, path) for k, v in value.items()}
        if go.kind == "list" and isinstance(value, list):
            assert go.element is not None
            return [self.decode(v, go.element, struct, path) for v in value]
        if go.kind == "struct" and isinstance(value, dict):
            decoded = go.zero()
            for key, raw in value.items():
                found = go.field(key)
                if found is not None:
                    name, field_go = found
                    decoded[name] = self.decode(raw, field_go, go.struct_name, (*path, name))
            return decoded
        return self._fail(_json_kind(value), go, struct, path)

    def _any(self, value: Any, struct: str, path: tuple[str, ...]) -> Any:
        """``value`` as it is (its strings are cleaned when it is written, see :func:`_encode`),
        after a search for the number beyond float64."""
        if isinstance(value, _Number) and not math.isfinite(float(value.text)):
            return self._fail(f"number {value.text}", _FLOAT64, struct, path)
        if isinstance(value, list):
            for item in value:
                self._any(item, struct, path)
        elif isinstance(value, dict):
            for item in value.values():
                self._any(item, struct, path)
        return value

    def _fail(self, what: str, go: _Go, struct: str, path: tuple[str, ...]) -> Any:
        if self.error is None:
            where = f"Go struct field {struct}.{'.'.join(path)}" if path else "Go value"
            self.error = f"json: cannot unmarshal {what} into {where} of type {go.name}"
        return go.zero()


async def _read(request: Request, go: _Go, *, prefixed: bool) -> Any:
    """The body decoded into ``go``; daprd prefixes the message except when saving."""
    prefix = "failed deserializing HTTP body: " if prefixed else ""
    try:
        parsed = _parse(await request.body())
    except _BodyError as exc:
        raise malformed(f"{prefix}{exc}") from None
    decoder = _GoDecoder(overflow=parsed.overflow)
    decoded = decoder.decode(parsed.value, go)
    if decoder.error is not None:
        raise malformed(f"{prefix}{decoder.error}")
    return decoded


# --- a transaction operation's request (mapstructure) --------------------------------------------

MsKind = Literal["string", "any", "map", "struct"]
_MS_OPTIONS: tuple[tuple[str, MsKind, tuple[Any, ...]], ...] = (
    ("Concurrency", "string", ()),
    ("Consistency", "string", ()),
)
_MS_DELETE: tuple[tuple[str, MsKind, tuple[Any, ...]], ...] = (
    ("Key", "string", ()),
    ("ETag", "string", ()),
    ("Metadata", "map", ()),
    ("Options", "struct", _MS_OPTIONS),
)
_MS_SET = (*_MS_DELETE, ("Value", "any", ()), ("ContentType", "string", ()))


def _go_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "float64"
    return "[]interface {}" if isinstance(value, list) else "map[string]interface {}"


def _go_kind(value: Any) -> str:
    if isinstance(value, list):
        return "slice"
    return "map" if isinstance(value, dict) else _go_type(value)


def _go_v(value: Any) -> str:
    """``value`` (decoded into ``interface{}``) as Go's ``%v`` prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _go_float(float(_number_text(value)))
    if isinstance(value, list):
        return "[" + " ".join(_go_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _go_float(number: float) -> str:
    """``%v`` of a float64: the shortest digits, in exponent form below 1e-4 or from 1e6."""
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign = "-" if number < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    assert isinstance(exponent, int)
    all_digits = "".join(map(str, digit_tuple))
    digits = all_digits.rstrip("0")
    point = len(all_digits) + exponent  # digits before the decimal point
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _ms_lookup(raw: Mapping[str, Any], name: str) -> Any:
    if name in raw:
        return raw[name]
    return next((v for k, v in raw.items() if k.lower() == name.lower()), None)


def _ms_struct(
    raw: Mapping[str, Any],
    fields: tuple[tuple[str, MsKind, tuple[Any, ...]], ...],
    prefix: str,
    errors: list[str],
) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for name, kind, nested in fields:
        path = f"{prefix}.{name}" if prefix else name
        value = _ms_lookup(raw, name)
        zero: Any = {"string": "", "map": {}, "any": None}.get(kind)
        decoded[name] = zero if kind != "struct" else _ms_struct({}, nested, path, errors)
        if value is None:
            continue
        if kind == "any":
            decoded[name] = value
        elif kind == "string":
            decoded[name] = _ms_string(path, value, errors)
        elif not isinstance(value, dict):
            errors.append(f"'{path}' expected a map, got '{_go_kind(value)}'")
        elif kind == "map":
            decoded[name] = {
                k: "" if v is None else _ms_string(f"{path}[{k}]", v, errors)
                for k, v in value.items()
            }
        else:
            decoded[name] = _ms_struct(value, nested, path, errors)
    return decoded


def _ms_string(path: str, value: Any, errors: list[str]) -> str:
    if isinstance(value, str):
        return value
    errors.append(
        f"'{path}' expected type 'string', got unconvertible type '{_go_type(value)}', "
        f"value: '{_go_v(value)}'"
    )
    return ""


def _mapstructure(
    raw: Any, fields: tuple[tuple[str, MsKind, tuple[Any, ...]], ...]
) -> dict[str, Any]:
    """daprd's ``mapstructure.Decode`` of an operation's ``request`` into its Go struct."""
    if raw is not None and not isinstance(raw, dict):
        raise malformed(f"failed deserializing HTTP body: '' expected a map, got '{_go_kind(raw)}'")
    errors: list[str] = []
    decoded = _ms_struct(raw or {}, fields, "", errors)
    if errors:
        points = "\n".join(sorted(f"* {error}" for error in errors))
        raise malformed(
            f"failed deserializing HTTP body: {len(errors)} error(s) decoding:\n\n{points}"
        )
    return decoded


# --- writing JSON as Go's encoding/json does -----------------------------------------------------

#: What Go's encoding/json escapes that Python's json does not (only ever inside a string).
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _go_escape(text: str) -> str:
    for char, escaped in _GO_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text


def _go_string(text: str, encoding: ValueEncoding = "std") -> str:
    """``text`` as a JSON string: ``encoding/json``'s (``"std"``) or jsoniter's (``"fastest"``:
    nothing escaped but what must be, ``\\b`` and ``\\f`` as ``\\u00XX``)."""
    quoted = json.dumps(text, ensure_ascii=False)
    if encoding == "std":
        return _go_escape(quoted)
    return _jsoniter_escapes(quoted)


def _go_json(value: Any, encoding: ValueEncoding = "std") -> str:
    """``value`` as daprd's store writes it (see :attr:`StateStore.value_encoding`), a number
    as sent."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _number_text(value)
    if isinstance(value, str):
        return _go_string(value, encoding)
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v, encoding) for v in value) + "]"
    items = sorted(value.items()) if encoding == "std" else value.items()
    members = (f"{_go_string(k, encoding)}:{_go_json(v, encoding)}" for k, v in items)
    return "{" + ",".join(members) + "}"


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _encode(value: Any, encoding: ValueEncoding) -> bytes:
    """A value to store. :mod:`json` writes it when every number is spelt as Python writes it
    (the usual case), else :func:`_go_json`; the same text either way."""
    try:
        text = json.dumps(
            value,
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=encoding == "std",
            allow_nan=False,
            default=_refuse,
        )
    except TypeError:  # a _Number
        text = _go_json(value, encoding)
    else:
        text = _go_escape(text) if encoding == "std" else _jsoniter_escapes(text)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return _clean(text).encode()


def _jsoniter_escapes(text: str) -> str:
    """Python's ``\\b`` and ``\\f`` as jsoniter writes them (``\\u0008``, ``\\u000c``), an
    escaped backslash (``\\\\``) left alone; NUL never occurs raw in :mod:`json`'s output."""
    if "\\b" not in text and "\\f" not in text:
        return text
    text = text.replace("\\\\", "\0").replace("\\b", "\\u0008").replace("\\f", "\\u000c")
    return text.replace("\0", "\\\\")


def _raw_json(value: bytes) -> str:
    """A stored value embedded in a bulk answer, escaped as Go's encoder escapes a raw message;
    one that is not JSON (not written by a sidecar) is embedded as a string rather than breaking
    the answer."""
    text = value.decode("utf-8", errors="replace")
    try:
        json.loads(text)
    except ValueError:
        return _go_string(text)
    return _go_escape(text)


# --- errors --------------------------------------------------------------------------------------

_DETAIL = "type.googleapis.com/google.rpc."
_MISMATCH = "possible etag mismatch. error from state store"
_INVALID = "invalid etag value"


def _error_info(reason: str, metadata: dict[str, str] | None) -> dict[str, Any]:
    return {
        "@type": _DETAIL + "ErrorInfo",
        "domain": "dapr.io",
        "metadata": metadata,
        "reason": reason,
    }


def _illegal_key(store: str, key: str, field: str) -> DaprError:
    """daprd's answer to a key with ``||`` (``field`` is empty inside a transaction, as there)."""
    message = (
        f"api error: code = InvalidArgument desc = input key/keyPrefix '{key}' can't contain '||'"
    )
    violation = {"field": field, "description": message} if field else {"description": message}
    details: list[dict[str, Any]] = [
        {"@type": _DETAIL + "BadRequest", "field_violations": [violation]},
        {
            "@type": _DETAIL + "ResourceInfo",
            "description": "",
            "owner": "",
            "resource_name": store,
            "resource_type": "state",
        },
        _error_info("DAPR_STATE_ILLEGAL_KEY", None),
    ]
    return DaprError(400, "ERR_MALFORMED_REQUEST", message, details=details)


def _store_error_text(exc: StoreError) -> str:
    """A store's error as daprd words it: an ETag error behind its prefix."""
    if isinstance(exc, ETagMismatchError):
        prefix = _MISMATCH
    elif isinstance(exc, ETagInvalidError):
        prefix = _INVALID
    else:
        return str(exc)
    return f"{prefix}: {exc}" if str(exc) else prefix


def _status(exc: StoreError) -> int:
    """409 for an ETag mismatch, 400 for an invalid ETag, 500 for anything else."""
    if isinstance(exc, ETagMismatchError):
        return 409
    return 400 if isinstance(exc, ETagInvalidError) else 500


def _bulk_error(errors: list[StoreError]) -> StoreError:
    """What daprd's bulk save (the items of a multi-item save, in parallel) reports: when every
    failure is an ETag error, all of them behind one more prefix; else the first ETag error; else
    all of them."""
    etag_errors = [e for e in errors if isinstance(e, ETagMismatchError | ETagInvalidError)]
    joined = "\n".join(_store_error_text(e) for e in errors)
    if len(etag_errors) == len(errors):
        if any(isinstance(e, ETagInvalidError) for e in errors):
            return ETagInvalidError(joined)
        return ETagMismatchError(joined)
    return etag_errors[0] if etag_errors else StoreError(joined)


# --- the endpoints -------------------------------------------------------------------------------


def _store(request: Request) -> tuple[RuntimeContext, str, StateStore]:
    ctx, name = context(request), request.path_params["store"]
    stores = ctx.components.state_stores
    if not stores:
        info = _error_info("DAPR_STATE_NOT_CONFIGURED", {"appID": ctx.app_id})
        message = f"state store {name} is not configured"
        raise DaprError(500, "ERR_STATE_STORE_NOT_CONFIGURED", message, details=[info])
    if name not in stores:
        info = _error_info("DAPR_STATE_NOT_FOUND", {"appID": ctx.app_id})
        message = f"state store {name} is not found"
        raise DaprError(400, "ERR_STATE_STORE_NOT_FOUND", message, details=[info])
    return ctx, name, stores[name]


def _stored_key(ctx: RuntimeContext, store: str, key: str, *, field: str) -> str:
    """``key`` with the store's ``keyPrefix``; a key with ``||`` is refused."""
    if "||" in key:
        raise _illegal_key(store, key, field)
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
    items = await _read(request, _SAVE_BODY, prefixed=False)
    query = request_metadata(request)
    writes = []
    for item in items:
        if not item["key"]:
            raise malformed('"key" is a required field')
        options = item["options"]
        writes.append(
            _Write(
                key=_stored_key(ctx, name, item["key"], field=item["key"]),
                value=_encode(item["value"], store.value_encoding),
                etag=item["etag"],
                metadata={**item["metadata"], **query},  # the query wins, as in daprd
                concurrency=options["Concurrency"],
                consistency=options["Consistency"],
            )
        )

    async def save(write: _Write) -> None:
        await store.set(write.set_request(store))

    # Item by item and in parallel, as daprd: one failing item does not stop the others.
    results = await asyncio.gather(*(save(write) for write in writes), return_exceptions=True)
    errors: list[StoreError] = []
    for result in results:
        if isinstance(result, StoreError):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result
    if errors:
        exc = errors[0] if len(writes) == 1 else _bulk_error(errors)
        message = f"failed saving state in state store {name}: {_store_error_text(exc)}"
        raise DaprError(_status(exc), "ERR_STATE_SAVE", message) from exc
    return Response(status_code=204)


async def get_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    key = request.path_params["key"]
    stored_key = _stored_key(ctx, name, key, field=key)
    try:
        item = await store.get(stored_key)
    except StoreError as exc:
        message = f"fail to get {key} from state store {name}: {exc}"
        raise DaprError(500, "ERR_STATE_GET", message) from exc
    if item is None:
        return Response(status_code=204)
    headers = {"ETag": item.etag, **{f"metadata.{k}": v for k, v in item.metadata.items()}}
    return Response(item.value, headers=headers, media_type=JSON)


async def bulk_get_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    body = await _read(request, _BULK_BODY, prefixed=True)
    keys: list[str] = body["keys"]
    stored_keys = [_stored_key(ctx, name, key, field=key) for key in keys]
    try:
        items = await store.bulk_get(stored_keys) if keys else []
    except StoreError as exc:
        raise DaprError(500, "ERR_STATE_BULK_GET", str(exc)) from exc
    entries = ",".join(_bulk_entry(key, item) for key, item in zip(keys, items, strict=True))
    return Response(f"[{entries}]\n".encode(), media_type=JSON)  # json.Encoder's newline


def _bulk_entry(key: str, item: StateItem | None) -> str:
    parts = [f'"key":{_go_string(key)}']
    if item is not None:
        if item.value:
            parts.append(f'"data":{_raw_json(item.value)}')
        parts.append(f'"etag":{_go_string(item.etag)}')
        if item.metadata:
            parts.append(f'"metadata":{_go_json(dict(item.metadata))}')
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
        message = f"failed deleting state with key {key}: {_store_error_text(exc)}"
        raise DaprError(_status(exc), "ERR_STATE_DELETE", message) from exc
    return Response(status_code=204)


def _transaction_write(
    ctx: RuntimeContext,
    store: str,
    operation: Mapping[str, Any],
    query: Mapping[str, str],
    encoding: ValueEncoding,
) -> _Write:
    kind = operation["operation"]
    if kind not in ("upsert", "delete"):
        message = f"operation type {kind} not supported"
        raise DaprError(400, "ERR_NOT_SUPPORTED_STATE_OPERATION", message)
    request = _mapstructure(operation["request"], _MS_SET if kind == "upsert" else _MS_DELETE)
    key = request["Key"]
    if not key:  # daprd would write the key "<prefix>" (see docs/runtime.md)
        raise malformed('"key" is a required field')
    options = request["Options"]
    return _Write(
        key=_stored_key(ctx, store, key, field=""),
        value=_encode(request["Value"], encoding) if kind == "upsert" else None,
        etag=request["ETag"],
        metadata={**request["Metadata"], **query},  # not the body's metadata, as in daprd
        concurrency=options["Concurrency"],
        consistency=options["Consistency"],
    )


async def transact_state(request: Request) -> Response:
    ctx, name, store = _store(request)
    body = await _read(request, _TRANSACTION_BODY, prefixed=True)
    if not body["operations"]:
        return Response(status_code=204)
    query = request_metadata(request)
    operations, encoding = body["operations"], store.value_encoding
    writes = [_transaction_write(ctx, name, op, query, encoding) for op in operations]
    try:
        backend_ops = [write.operation(store) for write in writes]
        if ctx.outbox is not None and ctx.outbox.enabled(name):
            backend_ops = await _through_outbox(ctx.outbox, name, writes, backend_ops, request)
        await store.transact(backend_ops)
    except StoreError as exc:
        message = f"error while executing state transaction: {_store_error_text(exc)}"
        raise DaprError(500, "ERR_STATE_TRANSACTION", message) from exc
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
        raise DaprError(
            500, "ERR_PUBLISH_OUTBOX", f"error while publishing outbox messages: {exc}"
        ) from exc
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
