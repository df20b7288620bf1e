"""Every object of deploy/kubernetes matches its schema, and a misspelt field would not.

Kubernetes objects are validated against the OpenAPI schemas of the newest Kubernetes that the
pinned ``kubernetes-validate`` ships, in its strict variant (no field the API does not define).
Dapr's resources, which those schemas do not describe, against the models of
``dapr_resources.py``; the local ones (components/, dapr-config.yaml) too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pydantic
import pytest
from packaging.version import Version

from tests.deploy import dapr_resources
from tests.deploy.manifests import COMPONENTS, KUBERNETES, ROOT, Manifest, cluster, manifests

#: The newest Kubernetes release whose schemas kubernetes-validate ships ("1.37.0" with 1.37.0).
KUBERNETES_VERSION: str = kubernetes_validate.latest_version()

KUBERNETES_OBJECTS = [m for m in cluster() if not m.is_dapr]
DAPR_RESOURCES = [m for m in cluster() if m.is_dapr] + manifests(
    *sorted(COMPONENTS.glob("*.yaml")), ROOT / "dapr-config.yaml"
)


def validate_kubernetes(doc: dict[str, Any]) -> str:
    """The Kubernetes minor version ``doc`` was validated against; raises where it fails."""
    return str(kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True))


def test_the_schemas_are_of_a_current_kubernetes() -> None:
    assert Version(KUBERNETES_VERSION) >= Version("1.37")
    shipped = kubernetes_validate.utils.all_versions()
    assert max(shipped, key=Version) == KUBERNETES_VERSION


def test_every_object_is_checked() -> None:
    """Both lists together hold every document (a kind without a schema fails below)."""
    assert KUBERNETES_OBJECTS and DAPR_RESOURCES
    kinds = {m.kind for m in KUBERNETES_OBJECTS}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert {m.kind for m in cluster() if m.is_dapr} == {
        "Component",
        "Subscription",
        "Resiliency",
        "Configuration",
    }


@pytest.mark.parametrize("manifest", KUBERNETES_OBJECTS, ids=lambda m: m.id)
def test_kubernetes_object_matches_the_openapi_schema(manifest: Manifest) -> None:
    expected = ".".join(KUBERNETES_VERSION.split(".")[:2])
    assert validate_kubernetes(manifest.doc) == expected


@pytest.mark.parametrize("manifest", DAPR_RESOURCES, ids=lambda m: m.id)
def test_dapr_resource_has_only_documented_fields(manifest: Manifest) -> None:
    dapr_resources.validate(manifest.doc)


# --- The checks fail where they must ---------------------------------------------------------


def find(kind: str, name: str) -> dict[str, Any]:
    """A deep copy of an object of deploy/kubernetes, to break."""
    (found,) = [m.doc for m in cluster() if m.kind == kind and m.name == name]
    return copy.deepcopy(found)


def at(doc: Any, *path: str | int) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def rename(doc: dict[str, Any], path: tuple[str | int, ...], old: str, new: str) -> None:
    parent = at(doc, *path)
    parent[new] = parent.pop(old)


Break = Callable[[dict[str, Any]], None]
CONTAINER: tuple[str | int, ...] = ("spec", "template", "spec", "containers", 0)


def _port_as_string(doc: dict[str, Any]) -> None:
    at(doc, *CONTAINER, "ports", 0)["containerPort"] = "8010"


KUBERNETES_BREAKS: list[tuple[str, str, Break, str]] = [
    (
        "Deployment",
        "chat-service",
        lambda d: rename(d, CONTAINER, "readinessProbe", "readinesProbe"),
        "'readinesProbe' was unexpected",
    ),
    (
        "Deployment",
        "agent-memory-service",
        lambda d: rename(d, (*CONTAINER, "resources"), "limits", "limit"),
        "'limit' was unexpected",
    ),
    ("Deployment", "chat-service", _port_as_string, "'8010' is not of type 'integer'"),
    (
        "HorizontalPodAutoscaler",
        "chat-service",
        lambda d: rename(
            d, ("spec", "metrics", 0, "resource", "target"), "averageUtilization", "averageCPU"
        ),
        "'averageCPU' was unexpected",
    ),
    (
        "PodDisruptionBudget",
        "agent-memory-service",
        lambda d: rename(d, ("spec",), "minAvailable", "minAvaliable"),
        "'minAvaliable' was unexpected",
    ),
]


@pytest.mark.parametrize(
    ("kind", "name", "breaks", "message"),
    KUBERNETES_BREAKS,
    ids=[f"{kind}/{name}:{message}" for kind, name, _, message in KUBERNETES_BREAKS],
)
def test_a_misspelt_kubernetes_field_fails(
    kind: str, name: str, breaks: Break, message: str
) -> None:
    doc = find(kind, name)
    validate_kubernetes(doc)
    breaks(doc)
    with pytest.raises(kubernetes_validate.ValidationError, match=re.escape(message)):
        validate_kubernetes(doc)


def _value_and_secret(doc: dict[str, Any]) -> None:
    at(doc, "spec", "metadata", 0)["secretKeyRef"] = {"name": "daca-redis", "key": "host"}


def _sampling_rate_as_number(doc: dict[str, Any]) -> None:
    at(doc, "spec", "tracing")["samplingRate"] = 1


def _undefined_retry(doc: dict[str, Any]) -> None:
    at(doc, "spec", "targets", "components", "pubsub", "inbound")["retry"] = "pubsubInbund"


def _duration_with_space(doc: dict[str, Any]) -> None:
    at(doc, "spec", "policies", "retries", "pubsubInbound")["maxInterval"] = "10 s"


EXTRA = "\n  Extra inputs are not permitted"

DAPR_BREAKS: list[tuple[str, str, Break, str]] = [
    (
        "Component",
        "chat-statestore",
        lambda d: rename(d, (), "scopes", "scope"),
        "\nscope" + EXTRA,
    ),
    (
        "Component",
        "statestore",
        lambda d: rename(d, ("spec",), "version", "versoin"),
        "spec.versoin" + EXTRA,
    ),
    ("Component", "statestore", _value_and_secret, "needs exactly one of value and secretKeyRef"),
    (
        "Subscription",
        "conversation-subscription",
        lambda d: rename(d, ("spec",), "deadLetterTopic", "deadLettertopic"),
        "spec.deadLettertopic" + EXTRA,
    ),
    (
        "Subscription",
        "conversation-deadletter-subscription",
        lambda d: rename(d, ("spec", "routes"), "default", "defualt"),
        "spec.routes.defualt" + EXTRA,
    ),
    (
        "Resiliency",
        "conversations-resiliency",
        lambda d: rename(d, ("spec", "policies", "retries", "pubsubInbound"), "maxRetries", "max"),
        "spec.policies.retries.pubsubInbound.max" + EXTRA,
    ),
    ("Resiliency", "conversations-resiliency", _undefined_retry, "undefined policy 'pubsubInbund'"),
    (
        "Resiliency",
        "conversations-resiliency",
        _duration_with_space,
        "pubsubInbound.maxInterval\n  String should match pattern",
    ),
    (
        "Configuration",
        "daca-config",
        lambda d: rename(d, ("spec", "tracing", "otel"), "endpointAddress", "endpointAdress"),
        "spec.tracing.otel.endpointAdress" + EXTRA,
    ),
    (
        "Configuration",
        "daca-config",
        _sampling_rate_as_number,
        "spec.tracing.samplingRate\n  Input should be a valid string",
    ),
]


@pytest.mark.parametrize(
    ("kind", "name", "breaks", "message"),
    DAPR_BREAKS,
    ids=[f"{kind}/{name}:{message.split()[0]}" for kind, name, _, message in DAPR_BREAKS],
)
def test_a_misspelt_dapr_field_fails(kind: str, name: str, breaks: Break, message: str) -> None:
    doc = find(kind, name)
    dapr_resources.validate(doc)
    breaks(doc)
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        dapr_resources.validate(doc)


def test_a_dapr_resource_without_a_model_fails() -> None:
    doc = find("Subscription", "conversation-subscription")
    doc["apiVersion"] = "dapr.io/v1alpha1"  # the deprecated Subscription format
    with pytest.raises(dapr_resources.UnknownDaprResource):
        dapr_resources.validate(doc)


def test_a_kubernetes_kind_without_a_schema_fails() -> None:
    doc = find("Deployment", "chat-service")
    doc["apiVersion"] = "apps/v1beta1"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate_kubernetes(doc)


def test_the_files_listed_are_the_files_applied() -> None:
    """kubectl applies *.yaml (and *.yml, *.json) of the directory: nothing hides in another."""
    assert not [*KUBERNETES.glob("*.yml"), *KUBERNETES.glob("*.json")]
