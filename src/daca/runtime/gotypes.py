"""Decoded JSON assigned to daprd's Go types as ``encoding/json`` assigns it.

Field names match the JSON name exactly, else in any case; unknown fields are ignored; ``null``
is the zero value; a value of the wrong type is left at its zero value and decoding goes on, and
the first such mistake is the error, in Go's words (``json: cannot unmarshal string into Go
struct field SetRequest.key of type string``). The request bodies of the state and bulk publish
APIs are described with :class:`GoType`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from daca.runtime.godecode import Number, clean, is_number, number_text

GoKind = Literal["string", "int", "any", "map", "list", "struct"]
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True, slots=True)
class GoType:
    """A Go type a body is decoded into, named as Go prints it.

    A ``map`` decodes ``null`` (or nothing) as ``None`` when ``nil_map``, else as ``{}``.
    """

    name: str
    kind: GoKind
    element: GoType | None = None
    fields: tuple[tuple[str, GoType], ...] = ()  # a struct's fields by JSON name
    nil_map: bool = False

    @property
    def struct_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def field(self, key: str) -> tuple[str, GoType] | None:
        """The field ``key`` names: the exact JSON name, else one equal ignoring case."""
        for name, go in self.fields:
            if name == key:
                return name, go
        folded = key.lower()
        return next(((n, go) for n, go in self.fields if n.lower() == folded), None)

    def zero(self) -> Any:
        if self.kind == "struct":
            return {name: go.zero() for name, go in self.fields}
        if self.kind == "map" and self.nil_map:
            return None
        return {"string": "", "int": 0, "map": {}, "list": []}.get(self.kind)


STRING = GoType("string", "string")
STRING_MAP = GoType("map[string]string", "map", STRING)
ANY = GoType("interface {}", "any")
_FLOAT64 = GoType("float64", "any")


def json_kind(value: Any) -> str:
    """The JSON type of a decoded value, as Go's type errors name it."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if is_number(value):
        return "number"
    return "array" if isinstance(value, list) else "object"


class GoDecoder:
    """``encoding/json`` into a :class:`GoType`; :attr:`error` is the first mistake.

    ``overflow``: look for the number beyond float64 in ``interface{}`` values (else they are
    taken as they are).
    """

    def __init__(self, *, overflow: bool = False) -> None:
        self.error: str | None = None
        self.overflow = overflow

    def decode(self, value: Any, go: GoType, struct: str = "", path: tuple[str, ...] = ()) -> Any:
        if value is None:
            return go.zero()
        if go.kind == "any":
            return self._any(value, struct, path) if self.overflow else value
        if go.kind == "string" and isinstance(value, str):
            return clean(value)
        if go.kind == "int" and is_number(value):
            return self._int(value, go, struct, path)
        if go.kind == "map" and isinstance(value, dict):
            assert go.element is not None
            return {clean(k): self.decode(v, go.element, struct, path) for k, v in value.items()}
        if go.kind == "list" and isinstance(value, list):
            assert go.element is not None
            return [self.decode(v, go.element, struct, path) for v in value]
        if go.kind == "struct" and isinstance(value, dict):
            return self._struct(value, go, path)
        return self._fail(json_kind(value), go, struct, path)

    def _int(self, value: Any, go: GoType, struct: str, path: tuple[str, ...]) -> Any:
        text = number_text(value)
        if text.lstrip("-").isdigit() and int(text) in _INT64:
            return int(text)
        return self._fail(f"number {text}", go, struct, path)

    def _struct(self, value: dict[str, Any], go: GoType, path: tuple[str, ...]) -> Any:
        decoded = go.zero()
        for key, raw in value.items():
            found = go.field(key)
            if found is not None:
                name, field_go = found
                decoded[name] = self.decode(raw, field_go, go.struct_name, (*path, name))
        return decoded

    def _any(self, value: Any, struct: str, path: tuple[str, ...]) -> Any:
        """``value`` as it is (its strings are cleaned when it is written), after a search for
        the number beyond float64."""
        if isinstance(value, Number) and not math.isfinite(float(value.text)):
            return self._fail(f"number {value.text}", _FLOAT64, struct, path)
        if isinstance(value, list):
            for item in value:
                self._any(item, struct, path)
        elif isinstance(value, dict):
            for item in value.values():
                self._any(item, struct, path)
        return value

    def _fail(self, what: str, go: GoType, struct: str, path: tuple[str, ...]) -> Any:
        if self.error is None:
            where = f"Go struct field {struct}.{'.'.join(path)}" if path else "Go value"
            self.error = f"json: cannot unmarshal {what} into {where} of type {go.name}"
        return go.zero()
