"""The one way daca validates the documents it reads at start-up: pydantic models, one message.

Components, Subscriptions, Resiliency, Configuration (:mod:`daca.runtime.loader`,
:mod:`daca.runtime.resiliency`) and the ``dapr run -f`` run file (:mod:`daca.runtime.runfile`)
are each described by models built on the bases here, and every problem in any of them, found by
pydantic or by the code that converts a valid document, reads the same way::

    components/statestore.yaml: Component 'statestore': field 'spec.metadata[2].name' is required

The bases decode as the Go readers of these files do (``sigs.k8s.io/yaml`` in daprd, ``yaml.v2``
in the Dapr CLI), so a file daprd reads means the same here:

- ``null`` is Go's zero value: a key set to ``null`` counts as absent, a ``null`` list or map entry
  as an empty mapping. Keys are strings (``sigs.k8s.io/yaml`` makes a YAML ``1:`` ``"1"``).
- Unknown fields are ignored, as Go ignores them. :class:`Lenient` models ignore them silently;
  :class:`Checked` ones (a resource's ``spec``, where a typo silently changes what runs) log each
  as ignored; :class:`Closed` ones refuse them.
- A string-valued map or metadata ``value`` takes any scalar (:func:`go_string`), as
  ``sigs.k8s.io/yaml`` turns a YAML ``3`` or ``true`` into the string a ``string`` field wants.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from daca.runtime.errors import ComponentError

logger = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)


class Lenient(BaseModel):
    """A Go struct read from YAML: camelCase keys, ``null`` as absent, unknown keys ignored."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_is_zero(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, Mapping):
            return {str(key): value for key, value in data.items() if value is not None}
        return data


class Checked(Lenient):
    """Unknown keys are ignored, as by daprd, but each is logged (see :func:`_unknown_fields`)."""

    model_config = ConfigDict(extra="allow")


class Closed(Lenient):
    """Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


def go_string(value: object) -> str:
    """A YAML value as a Go ``string`` field receives it: booleans as ``true``/``false``,
    mappings and lists as JSON, ``null`` as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _string_map(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(key): go_string(item) for key, item in value.items()}
    return value


NonEmpty = Annotated[str, StringConstraints(min_length=1)]
#: Any scalar, as a string (a component's metadata ``value``).
GoString = Annotated[str, BeforeValidator(go_string)]
#: A Go ``map[string]string``: every value a string, whatever scalar the YAML has.
StringMap = Annotated[dict[str, str], BeforeValidator(_string_map)]


class ObjectMeta(Lenient):
    """Kubernetes ``metadata``; daca reads only the name."""

    name: NonEmpty | None = None


class NamedMeta(ObjectMeta):
    name: NonEmpty


def required_name() -> Any:
    """The default of a :class:`NamedMeta` field: absent ``metadata`` is a missing name."""
    return Field(default_factory=dict, validate_default=True)


class Scoped(Lenient):
    """A resource's ``scopes``, the app-ids it applies to (none: every app), read on their own
    so that a resource for another app is skipped before the rest of it is validated."""

    scopes: list[str] = []


class Resource(Scoped):
    """What every resource document has (daprd's ``TypeMeta``, ``ObjectMeta`` and ``Scoped``)."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = ObjectMeta()


def document_name(body: Mapping[str, Any]) -> str | None:
    """``metadata.name`` if it is a non-empty string: to name a document before validating it."""
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) and name else None


@dataclass(frozen=True, slots=True)
class Where:
    """A document in a file, named the same way in every error and warning about it."""

    file: str  # e.g. "components/statestore.yaml", or "run file /x/dapr.yaml"
    document: str = ""  # e.g. "Component 'statestore'", "app 'orders'"; "" for the whole file

    @classmethod
    def resource(cls, file: str, kind: str, name: str | None) -> Where:
        return cls(file, f"{kind} {name!r}" if name else kind)

    def message(self, field: str, problem: str) -> str:
        return self._join(_phrase(field, problem))

    def error(self, field: str, problem: str) -> ComponentError:
        return ComponentError(self.message(field, problem))

    def validate(
        self,
        model: type[Model],
        data: object,
        error: Callable[[str], Exception] = ComponentError,
    ) -> Model:
        """``data`` as ``model``, else ``error`` with every problem; logs unknown fields."""
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            problems = (_phrase(_field_path(e["loc"]), _problem(e)) for e in exc.errors())
            raise error(self._join("; ".join(problems))) from None
        for field in _unknown_fields(parsed):
            logger.warning("%s", self.message(field, "is unknown, ignored"))
        return parsed

    def __str__(self) -> str:
        return self._join("")

    def _join(self, text: str) -> str:
        return ": ".join(part for part in (self.file, self.document, text) if part)


def _phrase(field: str, problem: str) -> str:
    return f"field {field!r} {problem}" if field else problem


def _field_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as YAML reads: ``('spec', 'metadata', 2)`` is ``spec.metadata[2]``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path


#: What a ``<type>_type`` (or ``int_parsing``, ``model_attributes_type``...) error expected.
_EXPECTED = {
    "string": "a string",
    "int": "an integer",
    "bool": "a boolean",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
}


def _problem(error: ErrorDetails) -> str:
    """What is wrong with one field, as the predicate of ``field 'x' ...``."""
    kind, given = error["type"], error.get("input")
    ctx = error.get("ctx", {})
    if kind == "missing" or (given is None and kind.endswith("_type")):
        return "is required"
    if kind in ("value_error", "assertion_error"):
        return str(ctx["error"])
    if kind == "extra_forbidden":
        return "is unknown"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, got {given!r}"
    expected = _EXPECTED.get(kind.split("_")[0])
    phrase = f"must be {expected}" if expected else error["msg"][:1].lower() + error["msg"][1:]
    return f"{phrase}, got {given!r}"


def _unknown_fields(model: BaseModel, path: str = "") -> Iterator[str]:
    """The paths of the keys that the :class:`Checked` models in ``model`` ignored."""
    for key in model.model_extra or {}:
        yield f"{path}.{key}" if path else key
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        yield from _unknown_in(getattr(model, name), f"{path}.{key}" if path else key)


def _unknown_in(value: object, path: str) -> Iterator[str]:
    if isinstance(value, BaseModel):
        yield from _unknown_fields(value, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unknown_in(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unknown_in(item, f"{path}.{key}")
