"""deploy/kubernetes has what a real deployment needs, and its parts agree with each other.

Probes on the services' health routes, requests and limits, an autoscaler and a disruption
budget per service, the production-mode secrets (named as the code reads them, and created by
the commands of deploy/kubernetes/README.md), a Dapr Configuration with tracing, and the Redis
marked for development only.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from daca.access.settings import AccessSettings
from daca.chat.routes import root as chat_root
from daca.memory.routes import root as memory_root
from tests.deploy.manifests import KUBERNETES, cluster, dapr_deployments, deployments, of_kind

#: Each service's app-id and the router that serves its GET /healthz.
HEALTH_ROUTERS = {"chat-service": chat_root.router, "agent-memory-service": memory_root.router}

_SIDECAR_PROBES = [
    f"sidecar-{probe}-probe-{setting}"
    for probe in ("liveness", "readiness")
    for setting in ("delay-seconds", "timeout-seconds", "period-seconds", "threshold")
]
#: The pod annotations Dapr's sidecar injector documents ("Arguments and annotations"): a
#: misspelt one is silently ignored by the injector, so it fails here.
DAPR_ANNOTATIONS = frozenset(
    f"dapr.io/{name}"
    for name in [
        *("enabled", "app-id", "app-port", "app-protocol", "app-max-concurrency", "config"),
        *("api-token-secret", "app-token-secret", "env", "env-from-secret"),
        *("enable-app-health-check", "app-health-check-path", "app-health-probe-interval"),
        *("app-health-probe-timeout", "app-health-threshold"),
        *("log-as-json", "log-level", "enable-api-logging", "enable-metrics", "metrics-port"),
        *("enable-profiling", "graceful-shutdown-seconds", "placement-host-address"),
        *("http-max-request-size", "http-read-buffer-size", "max-body-size", "read-buffer-size"),
        *("sidecar-image", "sidecar-listen-addresses", "sidecar-seccomp-profile-type"),
        *("sidecar-cpu-request", "sidecar-cpu-limit", "sidecar-memory-request"),
        *("sidecar-memory-limit", *_SIDECAR_PROBES),
        *("volume-mounts", "volume-mounts-rw", "disable-builtin-k8s-secret-store"),
        "unix-domain-socket-path",
    ]
)

APP_IDS = sorted(dapr_deployments())


def pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def pod_annotations(doc: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = doc["spec"]["template"]["metadata"].get("annotations", {})
    return found


def app_container(doc: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod(doc)["containers"]
    (container,) = [c for c in containers if c["name"] == "app"]
    return container


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def secret_ref(item: dict[str, Any]) -> dict[str, Any]:
    ref: dict[str, Any] = item["valueFrom"]["secretKeyRef"]
    return ref


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def test_both_services_are_deployed() -> None:
    assert sorted(HEALTH_ROUTERS) == APP_IDS


@pytest.mark.parametrize("app_id", APP_IDS)
@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probes_ask_the_service_health_route(app_id: str, probe: str) -> None:
    doc = dapr_deployments()[app_id]
    container = app_container(doc)
    action = container[probe]["httpGet"]
    assert action["path"] == "/healthz"
    assert port_number(container, action["port"]) == int(pod_annotations(doc)["dapr.io/app-port"])
    routes = [r for r in HEALTH_ROUTERS[app_id].routes if isinstance(r, APIRoute)]
    assert any(r.path == "/healthz" and "GET" in (r.methods or ()) for r in routes)


def test_liveness_is_more_patient_than_readiness() -> None:
    """A replica leaves the Service's endpoints well before the kubelet restarts it."""
    for doc in dapr_deployments().values():
        container = app_container(doc)

        def patience(probe: dict[str, Any]) -> int:
            return int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))

        assert patience(container["livenessProbe"]) > patience(container["readinessProbe"])


@pytest.mark.parametrize("name", sorted(deployments()))
def test_every_container_has_requests_and_limits(name: str) -> None:
    for container in pod(deployments()[name])["containers"]:
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), (container["name"], bound)


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_sidecar_has_requests_and_limits(app_id: str) -> None:
    """Also what makes the pod's CPU utilisation, which the autoscaler reads, defined."""
    found = pod_annotations(dapr_deployments()[app_id])
    for bound in ("request", "limit"):
        for resource in ("cpu", "memory"):
            assert f"dapr.io/sidecar-{resource}-{bound}" in found


@pytest.mark.parametrize("app_id", APP_IDS)
def test_each_service_scales_on_cpu(app_id: str) -> None:
    name = dapr_deployments()[app_id]["metadata"]["name"]
    (hpa,) = [
        m.doc
        for m in of_kind("HorizontalPodAutoscaler")
        if m.doc["spec"]["scaleTargetRef"]
        == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    ]
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    (metric,) = spec["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # The autoscaler owns the replica count: a `replicas:` would reset it on every apply.
    assert "replicas" not in dapr_deployments()[app_id]["spec"]


@pytest.mark.parametrize("app_id", APP_IDS)
def test_each_service_has_a_disruption_budget_below_its_minimum(app_id: str) -> None:
    doc = dapr_deployments()[app_id]
    labels = doc["spec"]["template"]["metadata"]["labels"]
    (pdb,) = [
        m.doc
        for m in of_kind("PodDisruptionBudget")
        if m.doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    (hpa,) = [
        m.doc
        for m in of_kind("HorizontalPodAutoscaler")
        if m.doc["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]
    ]
    # An integer minAvailable below the autoscaler's minimum: a drain can always evict one.
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_autoscalers_and_budgets_target_deployments_that_exist() -> None:
    names = set(deployments())
    assert {
        m.doc["spec"]["scaleTargetRef"]["name"] for m in of_kind("HorizontalPodAutoscaler")
    } <= names
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments().values()]
    for m in of_kind("PodDisruptionBudget"):
        selector = m.doc["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), m.name


@pytest.mark.parametrize("app_id", APP_IDS)
def test_services_run_in_production_mode_with_the_dapr_api_token(app_id: str) -> None:
    doc = dapr_deployments()[app_id]
    variables = env(app_container(doc))
    assert variables["DACA_MODE"]["value"] == "production"
    # daprd reads key `token` of the annotation's secret; the app must send the same.
    assert secret_ref(variables["DAPR_API_TOKEN"]) == {
        "name": pod_annotations(doc)["dapr.io/api-token-secret"],
        "key": "token",
    }


def test_the_memory_service_gets_the_token_its_sidecar_sends() -> None:
    doc = dapr_deployments()["agent-memory-service"]
    assert secret_ref(env(app_container(doc))["APP_API_TOKEN"]) == {
        "name": pod_annotations(doc)["dapr.io/app-token-secret"],
        "key": "token",
    }


def test_the_chat_service_gets_every_auth_setting_by_its_variable_name() -> None:
    aliases = {field.alias for field in AccessSettings.model_fields.values()}
    auth_names = {name for name in aliases if name and name.startswith("AUTH_")}
    variables = env(app_container(dapr_deployments()["chat-service"]))
    given = {name for name in variables if name.startswith("AUTH_")}
    assert given == auth_names
    for name in given:
        assert secret_ref(variables[name]) == {"name": "daca-auth", "key": name, "optional": True}


def referenced_secrets() -> dict[str, set[str]]:
    """Secret name -> the keys the deployments require of it (empty when all are optional)."""
    found: dict[str, set[str]] = {}
    for doc in deployments().values():
        for key, value in pod_annotations(doc).items():
            if key in ("dapr.io/api-token-secret", "dapr.io/app-token-secret"):
                found.setdefault(value, set()).add("token")
        for container in pod(doc)["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    keys = found.setdefault(ref["name"], set())
                    if not ref.get("optional", False):
                        keys.add(ref["key"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    found.setdefault(source["secretRef"]["name"], set())
    return found


def documented_secrets() -> dict[str, set[str]]:
    """Secret name -> the keys of the ``kubectl create secret generic`` commands of README.md."""
    text = (KUBERNETES / "README.md").read_text().replace("\\\n", " ")
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        command = re.search(r"kubectl create secret generic (\S+)(.*)", line)
        if command:
            keys = set(re.findall(r"--from-literal=([A-Za-z_][A-Za-z0-9_]*)=", command[2]))
            found.setdefault(command[1], set()).update(keys)
    return found


def test_every_secret_the_deployments_use_is_created_in_the_readme() -> None:
    documented = documented_secrets()
    for name, keys in referenced_secrets().items():
        assert name in documented, name
        assert keys <= documented[name], name


def test_dapr_annotations_are_documented_ones() -> None:
    for doc in deployments().values():
        used = {key for key in pod_annotations(doc) if key.startswith("dapr.io/")}
        assert used <= DAPR_ANNOTATIONS, used - DAPR_ANNOTATIONS
        for key in ("dapr.io/enabled", "dapr.io/enable-app-health-check", "dapr.io/log-as-json"):
            assert pod_annotations(doc).get(key, "true") in ("true", "false"), key


def test_the_sidecars_trace_through_the_configuration_here() -> None:
    configurations = {m.name: m.doc for m in of_kind("Configuration")}
    for doc in dapr_deployments().values():
        tracing = configurations[pod_annotations(doc)["dapr.io/config"]]["spec"]["tracing"]
        assert float(tracing["samplingRate"]) > 0
        assert tracing["otel"]["endpointAddress"]


def test_dapr_resources_name_components_and_apps_that_exist() -> None:
    components = {m.name: m.doc for m in of_kind("Component")}
    for m in cluster():
        if m.is_dapr:
            assert set(m.doc.get("scopes", [])) <= set(APP_IDS), m.id
    for m in of_kind("Subscription"):
        assert components[m.doc["spec"]["pubsubname"]]["spec"]["type"].startswith("pubsub.")
    for m in of_kind("Resiliency"):
        assert set(m.doc["spec"]["targets"].get("components", {})) <= set(components)
        assert set(m.doc["spec"]["targets"].get("apps", {})) <= set(APP_IDS)


def test_the_chat_service_is_exposed_on_its_app_port() -> None:
    (service,) = [m.doc for m in of_kind("Service") if m.name == "chat-service"]
    doc = dapr_deployments()["chat-service"]
    assert (
        service["spec"]["selector"].items() <= doc["spec"]["template"]["metadata"]["labels"].items()
    )
    (port,) = service["spec"]["ports"]
    number = port_number(app_container(doc), port["targetPort"])
    assert number == port["port"] == int(pod_annotations(doc)["dapr.io/app-port"])


def test_the_bundled_redis_is_for_development_only() -> None:
    dev = [m for m in cluster() if m.path.name == "redis-dev.yaml"]
    assert dev
    assert all(m.doc["metadata"]["labels"]["environment"] == "development" for m in dev)
    assert (KUBERNETES / "redis-dev.yaml").read_text().startswith("# DEVELOPMENT ONLY.")
    assert "## State and pub/sub at scale" in (KUBERNETES / "README.md").read_text()
    # Only the services' pods (with their sidecars) may reach it.
    (policy,) = [m.doc for m in dev if m.kind == "NetworkPolicy"]
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    (expression,) = peer["podSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("app", "In")
    assert sorted(expression["values"]) == APP_IDS
    # Nothing else in the cluster depends on it but the components that name it.
    for m in cluster():
        if m.path.name != "redis-dev.yaml" and "redis" in str(m.doc):
            assert m.kind == "Component" and m.doc["spec"]["type"].endswith(".redis"), m.id
