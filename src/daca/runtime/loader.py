"""Read Dapr resource YAML from ``--resources-path`` directories into typed :class:`Resources`.

Like daprd's disk loader (``dapr/dapr: pkg/internal/loader/disk/manifest.go``): only the
top-level ``.yaml``/``.yml`` files of each directory, in name order; subdirectories are not
searched; a file may hold several ``---`` documents. Each kind is a pydantic model of daprd's CRD
type (``pkg/apis/...``) on the bases of :mod:`daca.runtime.documents`, which also words every
error. Kinds:

- ``Component``: ``spec.metadata`` values become strings (booleans as ``true``/``false``), with
  ``{appID}`` and ``{uuid}`` expanded in plain values (not in secrets). A ``secretKeyRef`` is
  read from the *environment*: the variable named by ``secretKeyRef.key``, or by
  ``secretKeyRef.name`` when there is no key (what daprd's ``secretstores.local.env`` gives for
  the usual ``{name: X, key: X}``).
- ``Subscription`` (``v1alpha1`` ``route`` or ``v2alpha1`` ``routes``): every ``match`` is
  compiled now (:mod:`daca.runtime.cel`), so an expression it refuses stops start-up. For one
  (pubsubname, topic) the first subscription loaded wins.
- ``Resiliency``: see :func:`daca.runtime.resiliency.parse_resiliency`. As daprd
  (``pkg/resiliency/resiliency.go``, ``LoadLocalResiliency`` reads one document per file), only
  the first document of a file can be a Resiliency; a later one is ignored, with a warning.
- Anything else (``Configuration``, ``HTTPEndpoint``, ...) is skipped with a log line.

A resource whose non-empty ``scopes`` leave out the app-id is skipped before it is validated.
Where daprd logs a bad resource and goes on without it, daca stops: every problem raises
:class:`ComponentError` naming the file, the resource and the field.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field

from daca.runtime.cel import UnsupportedExpressionError, compile_match
from daca.runtime.documents import (
    Checked,
    Closed,
    GoString,
    Lenient,
    NamedMeta,
    NonEmpty,
    Resource,
    Scoped,
    StringMap,
    Where,
    document_name,
    required_name,
)
from daca.runtime.errors import ComponentError
from daca.runtime.resiliency import parse_resiliency
from daca.runtime.resources import (
    BulkSubscribe,
    ComponentSpec,
    ResiliencySpec,
    Resources,
    RouteRule,
    SubscriptionSpec,
)

logger = logging.getLogger(__name__)

_YAML_SUFFIXES = (".yaml", ".yml")
NonNegative = Annotated[int, Field(ge=0)]
_LOADED_KINDS = ("Component", "Subscription", "Resiliency")


class _SecretKeyRef(Lenient):
    name: str = ""
    key: str = ""


class _MetadataItem(Closed):
    """daprd's ``NameValuePair``; closed, so a misspelt ``value`` is not silently empty."""

    name: NonEmpty
    value: GoString = ""
    secret_key_ref: _SecretKeyRef | None = None


class _ComponentSpec(Checked):
    """daprd's ``components/v1alpha1.ComponentSpec``."""

    type: NonEmpty
    version: GoString = ""
    metadata: list[_MetadataItem] = []
    init_timeout: str = ""
    ignore_errors: bool = False


class _Component(Resource):
    metadata: NamedMeta = required_name()
    spec: _ComponentSpec


def _compiled(match: str) -> str:
    """``match``, compiled now so that an expression daca cannot evaluate stops start-up."""
    try:
        compile_match(match)
    except UnsupportedExpressionError as exc:
        raise ValueError(f"cannot be compiled: {exc}") from None
    return match


class _Rule(Checked):
    """daprd's ``subscriptions/v2alpha1.Rule``."""

    match: Annotated[NonEmpty, AfterValidator(_compiled)]
    path: NonEmpty


class _Routes(Checked):
    rules: list[_Rule] = []
    default: NonEmpty | None = None


class _BulkSubscribe(Checked):
    """daprd's ``BulkSubscribe``; a negative limit is refused (daprd would fail to subscribe)."""

    enabled: bool = False
    max_messages_count: NonNegative = 0
    max_await_duration_ms: NonNegative = 0


class _SubscriptionSpec(Checked):
    """What both versions have; each reads its own route field and ignores the other's."""

    pubsubname: NonEmpty
    topic: NonEmpty
    route: Any = None
    routes: Any = None
    dead_letter_topic: str = ""
    metadata: StringMap = {}
    bulk_subscribe: _BulkSubscribe = _BulkSubscribe()


class _V1Spec(_SubscriptionSpec):
    route: NonEmpty | None = None


class _V2Spec(_SubscriptionSpec):
    routes: _Routes = _Routes()


class _V1Subscription(Resource):
    spec: _V1Spec


class _V2Subscription(Resource):
    spec: _V2Spec


class _Configuration(Resource):
    """Its settings are not applied, so only its shape is checked."""

    spec: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class _Document:
    body: dict[str, Any]
    source: str
    index: int = 1  # its place in the file, from 1


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
            name = document_name(document.body)
            Where.resource(str(path), "Configuration", name).validate(_Configuration, document.body)
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


class _Collector:
    """Accumulates resources in load order, refusing duplicates."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.components: dict[str, ComponentSpec] = {}
        self.subscriptions: dict[tuple[str, str], SubscriptionSpec] = {}
        self.resiliencies: list[ResiliencySpec] = []

    def add(self, document: _Document) -> None:
        kind = document.body.get("kind")
        if kind not in _LOADED_KINDS:
            logger.info("%s: kind %r is not loaded, skipped", document.source, kind)
            return
        where = Where.resource(document.source, str(kind), document_name(document.body))
        scopes = where.validate(Scoped, document.body).scopes
        if scopes and self.app_id not in scopes:
            logger.debug(
                "%s: %s scoped to %s, not %r: skipped", where.file, kind, scopes, self.app_id
            )
        elif kind == "Component":
            self._add_component(_component(where, document.body, self.app_id))
        elif kind == "Subscription":
            self._add_subscription(_subscription(where, document.body))
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


def _component(where: Where, body: dict[str, Any], app_id: str) -> ComponentSpec:
    component = where.validate(_Component, body)
    items = enumerate(component.spec.metadata)
    return ComponentSpec(
        name=component.metadata.name,
        type=component.spec.type,
        version=component.spec.version or "v1",
        metadata={item.name: _metadata_value(where, item, i, app_id) for i, item in items},
        source=where.file,
        scopes=tuple(component.scopes),
    )


def _metadata_value(where: Where, item: _MetadataItem, index: int, app_id: str) -> str:
    reference = item.secret_key_ref
    if reference is None:
        value = item.value.replace("{appID}", app_id)
        return value.replace("{uuid}", str(uuid.uuid4())) if "{uuid}" in value else value
    field = f"spec.metadata[{index}].secretKeyRef"
    variable = reference.key or reference.name
    if not variable:
        raise where.error(field, "needs a 'key' or 'name' naming an environment variable")
    secret = os.environ.get(variable)
    if secret is None:
        raise where.error(field, f"names environment variable {variable!r}, which is not set")
    return secret


def _subscription(where: Where, body: dict[str, Any]) -> SubscriptionSpec:
    version = body.get("apiVersion")
    subscription: _V1Subscription | _V2Subscription
    if version == "dapr.io/v1alpha1":
        subscription = where.validate(_V1Subscription, body)
        rules: tuple[RouteRule, ...] = ()
        default, hint = subscription.spec.route, "spec.route (v1alpha1)"
    elif version == "dapr.io/v2alpha1":
        subscription = where.validate(_V2Subscription, body)
        routes = subscription.spec.routes
        rules = tuple(RouteRule(match=rule.match, path=rule.path) for rule in routes.rules)
        default, hint = routes.default, "spec.routes.rules or spec.routes.default (v2alpha1)"
    else:
        versions = "'dapr.io/v1alpha1' or 'dapr.io/v2alpha1'"
        raise where.error("apiVersion", f"must be {versions}, got {version!r}")
    if not rules and default is None:
        raise where.error("spec", f"has no route: set {hint}")
    spec = subscription.spec
    concurrency = spec.metadata.get("concurrency", "")
    if concurrency and not (concurrency.isdecimal() and int(concurrency) > 0):
        raise where.error(
            "spec.metadata.concurrency", f"must be a whole number > 0, got {concurrency!r}"
        )
    return SubscriptionSpec(
        pubsubname=spec.pubsubname,
        topic=spec.topic,
        rules=rules,
        default_route=default,
        dead_letter_topic=spec.dead_letter_topic or None,
        metadata=dict(spec.metadata),
        name=subscription.metadata.name,
        source=where.file,
        bulk_subscribe=BulkSubscribe(
            enabled=spec.bulk_subscribe.enabled,
            max_messages_count=spec.bulk_subscribe.max_messages_count,
            max_await_duration_ms=spec.bulk_subscribe.max_await_duration_ms,
        ),
    )
