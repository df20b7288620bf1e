"""The Kubernetes files say what components/ and dapr.yaml say, but for where Redis is."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.manifests import COMPONENTS, KUBERNETES, ROOT, documents


def without_redis_host(doc: dict[str, Any]) -> dict[str, Any]:
    items = doc.get("spec", {}).get("metadata")
    if isinstance(items, list):
        doc["spec"]["metadata"] = [item for item in items if item.get("name") != "redisHost"]
    return doc


@pytest.mark.parametrize("name", sorted(p.name for p in COMPONENTS.glob("*.yaml")))
def test_kubernetes_components_match_the_local_ones(name: str) -> None:
    local = [without_redis_host(doc) for doc in documents(COMPONENTS / name)]
    cluster = [without_redis_host(doc) for doc in documents(KUBERNETES / name)]
    assert cluster == local


def test_kubernetes_apps_match_the_run_file() -> None:
    run_file = {app["appID"]: app["appPort"] for app in documents(ROOT / "dapr.yaml")[0]["apps"]}
    deployments = {
        doc["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"]: int(
            doc["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-port"]
        )
        for doc in documents(KUBERNETES / "services.yaml")
        if doc["kind"] == "Deployment"
    }
    assert deployments == run_file
