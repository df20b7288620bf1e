"""Read Dapr resource YAML from ``--resources-path`` directories into typed :class:`Resources`.

Like daprd's disk loader (``dapr/dapr: pkg/internal/loader/disk/manifest.go``): only the
top-level ``.yaml``/``.yml`` files of each directory, in name order; subdirectories are not
searched; a file may hold several ``---`` documents. Kinds:

- ``Component``: ``spec.metadata`` values become strings (booleans as ``true``/``false``), with
  ``{appID}`` and ``{uuid}`` expanded in plain values (not in secrets). A ``secretKeyRef`` is
  read from the *environment*: the variable named by ``secretKeyRef.key``, or by
  ``secretKeyRef.name`` when there is no key (what daprd's ``secretstores.local.env`` gives for
  the usual ``{name: X, key: X}``).
- ``Subscription`` (``v1alpha1`` ``route`` or ``v2alpha1`` ``routes``): every ``match`` is
  compiled now, so an expression outside :mod:`daca.runtime.cel`'s subset stops start-up. For one
  (pubsubname, topic) the first subscription loaded wins.
- ``Resiliency``: see :func:`daca.runtime.resiliency.parse_resiliency`. As daprd
  (``pkg/resiliency/resiliency.go``, ``LoadLocalResiliency`` reads one document per file), only
  the first document of a file can be a Resiliency; a later one is ignored, with a warning.
- Anything else (``Configuration``, ``HTTPEndpoint``, ...) is skipped with a log line.

A resource whose non-empty ``scopes`` leave out the app-id is skipped before it is validated.
Every problem raises :class:`ComponentError` naming the file, the resource and the field.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from daca.runtime.cel import UnsupportedExpressionError, compile_match
from daca.runtime.errors import ComponentError
from daca.runtime.resiliency import parse_resiliency
from daca.runtime.resources import (
    ComponentSpec,
    ResiliencySpec,
    Resources,
    RouteRule,
    SubscriptionSpec,
)

logger = logging.getLogger(__name__)

_YAML_SUFFIXES = (".yaml", ".yml")
_SUBSCRIPTION_APIS = ("dapr.io/v1alpha1", "dapr.io/v2alpha1")
_COMPONENT_SPEC_KEYS = {"type", "version", "metadata", "initTimeout", "ignoreErrors"}
_SUBSCRIPTION_SPEC_KEYS = {
    "pubsubname",
    "topic",
    "route",
    "routes",
    "deadLetterTopic",
    "metadata",
    "bulkSubscribe",
}
_METADATA_ITEM_KEYS = {"name", "value", "secretKeyRef"}


@dataclass(frozen=True, slots=True)
class _Document:
    body: dict[str, Any]
    source: str
    index: int = 1  # its place in the file, from 1


@dataclass(frozen=True, slots=True)
class _Where:
    """A resource in a file, for error messages: ``file: component 'x': field 'f' problem``."""

    source: str
    kind: str
    name: str

    def error(self, field: str, problem: str) -> ComponentError:
        return ComponentError(
            f"{self.source}: {self.kind} {self.name!r}: field {field!r} {problem}"
        )

    def mapping(self, value: object, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(field, "is required" if value is None else "must be a mapping")
        return value

    def string(self, value: object, field: str) -> str:
        if value is None:
            raise self.error(field, "is required")
        if not isinstance(value, str) or not value:
            raise self.error(field, f"must be a non-empty string, got {value!r}")
        return value

    def optional_string(self, value: object, field: str) -> str | None:
        return None if value is None else self.string(value, field)

    def warn_unknown(self, spec: Mapping[str, Any], known: set[str]) -> None:
        for key in sorted(set(spec) - known):
            logger.warning(
                "%s: %s %r: unknown field 'spec.%s' ignored", self.source, self.kind, self.name, key
            )


def load_resources(paths: Sequence[Path], app_id: str) -> Resources:
    """Load every resource in ``paths`` that applies to ``app_id``."""
    collector = _Collector(app_id)
    for path in paths:
        for file in _yaml_files(path):
            for document in _read_documents(file):
                collector.add(document)
    return collector.resources()


def load_configuration(path: Path) -> dict[str, Any]:
    """The ``kind: Configuration`` document in ``path`` (daprd's ``--config``); not applied."""
    if not path.is_file():
        raise ComponentError(f"configuration file {path} does not exist")
    for document in _read_documents(path):
        if document.body.get("kind") == "Configuration":
            name = _metadata_name(document.body) or "(unnamed)"
            logger.info("configuration %r from %s: its settings are not applied", name, path)
            return document.body
    raise ComponentError(f"{path}: no 'kind: Configuration' document found")


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise ComponentError(f"resources path {directory} {problem}")
    files = []
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and entry.suffix in _YAML_SUFFIXES:
            files.append(entry)
        else:
            logger.debug("%s: not a top-level YAML file, skipped", entry)
    return files


def _read_documents(file: Path) -> list[_Document]:
    try:
        bodies = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ComponentError(f"{file}: cannot read YAML: {exc}") from None
    documents = []
    for index, body in enumerate(bodies, start=1):
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ComponentError(f"{file}: document {index} is not a mapping")
        documents.append(_Document(body, str(file), index))
    return documents


def _metadata_name(body: Mapping[str, Any]) -> str | None:
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) and name else None


def _in_scope(document: _Document, kind: str, app_id: str) -> bool:
    scopes = document.body.get("scopes") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        name = _metadata_name(document.body) or "(unnamed)"
        raise _Where(document.source, kind, name).error("scopes", "must be a list of app-ids")
    if scopes and app_id not in scopes:
        logger.debug("%s: %s scoped to %s, not %r: skipped", document.source, kind, scopes, app_id)
        return False
    return True


class _Collector:
    """Accumulates resources in load order, refusing duplicates."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.components: dict[str, ComponentSpec] = {}
        self.subscriptions: dict[tuple[str, str], SubscriptionSpec] = {}
        self.resiliencies: list[ResiliencySpec] = []

    def add(self, document: _Document) -> None:
        kind = document.body.get("kind")
        if kind not in ("Component", "Subscription", "Resiliency"):
            logger.info("%s: kind %r is not loaded, skipped", document.source, kind)
        elif not _in_scope(document, str(kind).lower(), self.app_id):
            return
        elif kind == "Component":
            self._add_component(_component(document, self.app_id))
        elif kind == "Subscription":
            self._add_subscription(_subscription(document))
        elif document.index > 1:
            logger.warning(
                "%s: the Resiliency in document %d is ignored: daprd reads a Resiliency only as "
                "the first document of its file; give it a file of its own",
                document.source,
                document.index,
            )
        else:
            self.resiliencies.append(parse_resiliency(document.body, document.source))

    def _add_component(self, spec: ComponentSpec) -> None:
        earlier = self.components.get(spec.name)
        if earlier is not None:
            raise ComponentError(
                f"component name {spec.name!r} is defined twice: in {earlier.source} "
                f"and in {spec.source}"
            )
        self.components[spec.name] = spec

    def _add_subscription(self, spec: SubscriptionSpec) -> None:
        key = (spec.pubsubname, spec.topic)
        earlier = self.subscriptions.get(key)
        if earlier is not None:
            logger.warning(
                "%s: a subscription to %s/%s was already loaded from %s; this one is ignored",
                spec.source,
                spec.pubsubname,
                spec.topic,
                earlier.source,
            )
            return
        self.subscriptions[key] = spec

    def resources(self) -> Resources:
        return Resources(
            components=tuple(self.components.values()),
            subscriptions=tuple(self.subscriptions.values()),
            resiliencies=tuple(self.resiliencies),
        )


def _component(document: _Document, app_id: str) -> ComponentSpec:
    name = _metadata_name(document.body)
    if name is None:
        raise ComponentError(f"{document.source}: component: field 'metadata.name' is required")
    where = _Where(document.source, "component", name)
    spec = where.mapping(document.body.get("spec"), "spec")
    where.warn_unknown(spec, _COMPONENT_SPEC_KEYS)
    return ComponentSpec(
        name=name,
        type=where.string(spec.get("type"), "spec.type"),
        version=_stringify(spec.get("version")) or "v1",
        metadata=_component_metadata(where, spec.get("metadata"), app_id),
        source=document.source,
        scopes=tuple(document.body.get("scopes") or ()),
    )


def _component_metadata(where: _Where, items: object, app_id: str) -> dict[str, str]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise where.error("spec.metadata", "must be a list of {name, value} entries")
    values: dict[str, str] = {}
    for index, item in enumerate(items):
        entry = where.mapping(item, f"spec.metadata[{index}]")
        field = where.string(entry.get("name"), f"spec.metadata[{index}].name")
        for key in sorted(set(entry) - _METADATA_ITEM_KEYS):
            raise where.error(
                f"spec.metadata[{field}].{key}", "is unknown (use value or secretKeyRef)"
            )
        if "secretKeyRef" in entry:
            values[field] = _secret(where, entry["secretKeyRef"], field)
        else:
            values[field] = _expand(_stringify(entry.get("value")), app_id)
    return values


def _secret(where: _Where, ref: object, field: str) -> str:
    path = f"spec.metadata[{field}].secretKeyRef"
    reference = where.mapping(ref, path)
    variable = reference.get("key") or reference.get("name")
    if not isinstance(variable, str):
        raise where.error(path, "needs a 'key' or 'name' naming an environment variable")
    value = os.environ.get(variable)
    if value is None:
        raise where.error(path, f"names environment variable {variable!r}, which is not set")
    return value


def _stringify(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _expand(value: str, app_id: str) -> str:
    value = value.replace("{appID}", app_id)
    return value.replace("{uuid}", str(uuid.uuid4())) if "{uuid}" in value else value


def _subscription(document: _Document) -> SubscriptionSpec:
    body = document.body
    name = _metadata_name(body)
    where = _Where(document.source, "subscription", name or "(unnamed)")
    version = body.get("apiVersion")
    if version not in _SUBSCRIPTION_APIS:
        raise where.error("apiVersion", f"must be one of {_SUBSCRIPTION_APIS}, got {version!r}")
    spec = where.mapping(body.get("spec"), "spec")
    where.warn_unknown(spec, _SUBSCRIPTION_SPEC_KEYS)
    rules, default = _routes(where, spec, version == "dapr.io/v1alpha1")
    dead_letter = spec.get("deadLetterTopic")
    metadata = {str(k): _stringify(v) for k, v in _optional_mapping(where, spec).items()}
    concurrency = metadata.get("concurrency", "")
    if concurrency and not (concurrency.isdigit() and int(concurrency) > 0):
        raise where.error(
            "spec.metadata.concurrency", f"must be a whole number > 0, got {concurrency!r}"
        )
    return SubscriptionSpec(
        pubsubname=where.string(spec.get("pubsubname"), "spec.pubsubname"),
        topic=where.string(spec.get("topic"), "spec.topic"),
        rules=rules,
        default_route=default,
        dead_letter_topic=where.string(dead_letter, "spec.deadLetterTopic")
        if dead_letter
        else None,
        metadata=metadata,
        name=name,
        source=document.source,
    )


def _optional_mapping(where: _Where, spec: Mapping[str, Any]) -> Mapping[str, Any]:
    value = spec.get("metadata")
    return {} if value is None else where.mapping(value, "spec.metadata")


def _routes(
    where: _Where, spec: Mapping[str, Any], v1: bool
) -> tuple[tuple[RouteRule, ...], str | None]:
    if v1:
        rules: tuple[RouteRule, ...] = ()
        default = where.optional_string(spec.get("route"), "spec.route")
        hint = "spec.route (v1alpha1)"
    else:
        routes = where.mapping(spec.get("routes") or {}, "spec.routes")
        rules = tuple(_rule(where, rule, i) for i, rule in enumerate(routes.get("rules") or []))
        default = where.optional_string(routes.get("default"), "spec.routes.default")
        hint = "spec.routes.rules or spec.routes.default (v2alpha1)"
    if not rules and default is None:
        raise where.error("spec", f"has no route: set {hint}")
    return rules, default


def _rule(where: _Where, raw: object, index: int) -> RouteRule:
    field = f"spec.routes.rules[{index}]"
    rule = where.mapping(raw, field)
    match = where.string(rule.get("match"), f"{field}.match")
    path = where.string(rule.get("path"), f"{field}.path")
    try:
        compile_match(match)
    except UnsupportedExpressionError as exc:
        raise where.error(f"{field}.match", f"is outside the supported CEL subset: {exc}") from None
    return RouteRule(match=match, path=path)
