"""A decoded JSON object assigned to a Go struct as ``mapstructure.Decode`` assigns it.

daprd decodes a state transaction operation's ``request`` this way: field names match in any
case, a mistyped field is reported and decoding goes on, and every mistake is listed in
mapstructure's words (``'Key' expected type 'string', got unconvertible type 'float64', value:
'1'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from daca.runtime.gofmt import go_v
from daca.runtime.gotypes import json_kind

MsKind = Literal["string", "any", "map", "struct"]
Fields = tuple[tuple[str, MsKind, tuple[Any, ...]], ...]

_OPTIONS: Fields = (("Concurrency", "string", ()), ("Consistency", "string", ()))
#: daprd's ``state.DeleteRequest`` and ``state.SetRequest``.
DELETE_REQUEST: Fields = (
    ("Key", "string", ()),
    ("ETag", "string", ()),
    ("Metadata", "map", ()),
    ("Options", "struct", _OPTIONS),
)
SET_REQUEST: Fields = (*DELETE_REQUEST, ("Value", "any", ()), ("ContentType", "string", ()))


class MapstructureError(ValueError):
    """The value does not fit the struct; the message is mapstructure's."""


def decode(raw: Any, fields: Fields) -> dict[str, Any]:
    """``raw`` decoded into the struct ``fields`` describe; :class:`MapstructureError`."""
    if raw is not None and not isinstance(raw, dict):
        raise MapstructureError(f"'' expected a map, got '{_go_kind(raw)}'")
    errors: list[str] = []
    decoded = _struct(raw or {}, fields, "", errors)
    if errors:
        points = "\n".join(sorted(f"* {error}" for error in errors))
        raise MapstructureError(f"{len(errors)} error(s) decoding:\n\n{points}")
    return decoded


#: The Go type of a value decoded into ``interface{}``, by its JSON kind.
_GO_TYPES = {
    "string": "string",
    "bool": "bool",
    "number": "float64",
    "array": "[]interface {}",
    "object": "map[string]interface {}",
}


def _go_type(value: Any) -> str:
    return _GO_TYPES[json_kind(value)]


def _go_kind(value: Any) -> str:
    if isinstance(value, list):
        return "slice"
    return "map" if isinstance(value, dict) else _go_type(value)


def _lookup(raw: Mapping[str, Any], name: str) -> Any:
    if name in raw:
        return raw[name]
    return next((v for k, v in raw.items() if k.lower() == name.lower()), None)


def _struct(
    raw: Mapping[str, Any], fields: Fields, prefix: str, errors: list[str]
) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for name, kind, nested in fields:
        path = f"{prefix}.{name}" if prefix else name
        value = _lookup(raw, name)
        zero: Any = {"string": "", "map": {}, "any": None}.get(kind)
        decoded[name] = zero if kind != "struct" else _struct({}, nested, path, errors)
        if value is not None:
            decoded[name] = _field(path, kind, nested, value, errors, decoded[name])
    return decoded


def _field(
    path: str, kind: MsKind, nested: Fields, value: Any, errors: list[str], zero: Any
) -> Any:
    if kind == "any":
        return value
    if kind == "string":
        return _string(path, value, errors)
    if not isinstance(value, dict):
        errors.append(f"'{path}' expected a map, got '{_go_kind(value)}'")
        return zero
    if kind == "map":
        return {
            k: "" if v is None else _string(f"{path}[{k}]", v, errors) for k, v in value.items()
        }
    return _struct(value, nested, path, errors)


def _string(path: str, value: Any, errors: list[str]) -> str:
    if isinstance(value, str):
        return value
    errors.append(
        f"'{path}' expected type 'string', got unconvertible type '{_go_type(value)}', "
        f"value: '{go_v(value)}'"
    )
    return ""
