"""daprd's request body types as pydantic models, decoded by Go's ``encoding/json`` rules.

A model declares a body once: its fields are the Go struct's, by JSON name (an alias where that
is no Python name), and ``go_name`` names the struct as Go's errors print it. Pydantic alone
would read a body otherwise than daprd (Go matches names in any case, decodes ``null`` as the
zero value and reports the first mistake in its own words), so a body is first decoded into the
:class:`~daca.runtime.gotypes.GoType` derived from its model, as Go decodes it, and only then
validated into the model: the code behind reads typed values, and every malformed body fails
with daprd's message.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter

from daca.runtime.gotypes import ANY, STRING, STRING_MAP, GoDecoder, GoType

T = TypeVar("T")
_SCALARS = {str: STRING, int: GoType("int", "int"), Any: ANY}


class GoStruct(BaseModel):
    """A Go struct of daprd's; ``go_name`` is its package-qualified name."""

    model_config = ConfigDict(frozen=True)
    go_name: ClassVar[str]


def go_type(annotation: Any) -> GoType:
    """The Go type a field or body typed ``annotation`` has in daprd."""
    if isinstance(annotation, type) and issubclass(annotation, GoStruct):
        fields = annotation.model_fields.items()
        named = tuple((info.alias or name, go_type(info.annotation)) for name, info in fields)
        return GoType(annotation.go_name, "struct", fields=named)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        element = go_type(args[0])
        return GoType(f"[]{element.name}", "list", element)
    if origin is dict and args == (str, str):
        return STRING_MAP
    if args == (dict[str, str], type(None)):  # a map left nil when the body has none
        return dataclasses.replace(STRING_MAP, nil_map=True)
    return _SCALARS[annotation]


class GoBody(Generic[T]):
    """A body of type ``T``: decoded as Go decodes it into daprd's type, then validated."""

    def __init__(self, annotation: type[T]) -> None:
        self._adapter = TypeAdapter(annotation)
        self._go = go_type(annotation)

    def decode(self, value: Any, *, overflow: bool = False) -> T:
        """``value`` (parsed JSON) as a ``T``; ``ValueError`` with Go's message. ``overflow``:
        a number beyond float64 is somewhere in ``value`` (see :class:`GoDecoder`)."""
        decoder = GoDecoder(overflow=overflow)
        decoded = decoder.decode(value, self._go)
        if decoder.error is not None:
            raise ValueError(decoder.error)
        return self._adapter.validate_python(decoded)
