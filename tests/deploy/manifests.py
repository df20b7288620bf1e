"""Reading the deployment files: every YAML document, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPONENTS = ROOT / "components"


def documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@dataclass(frozen=True)
class Manifest:
    """One object of a YAML file."""

    path: Path
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.kind}/{self.name}"

    @property
    def is_dapr(self) -> bool:
        return str(self.doc.get("apiVersion", "")).startswith("dapr.io/")


def manifests(*paths: Path) -> list[Manifest]:
    return [Manifest(path, doc) for path in paths for doc in documents(path)]


def cluster() -> list[Manifest]:
    """Every object of deploy/kubernetes/*.yaml: what ``kubectl apply -f`` of it sends."""
    return manifests(*sorted(KUBERNETES.glob("*.yaml")))


def of_kind(kind: str) -> list[Manifest]:
    return [m for m in cluster() if m.kind == kind]


def deployments() -> dict[str, dict[str, Any]]:
    """The Deployments of deploy/kubernetes, by name."""
    return {m.name: m.doc for m in of_kind("Deployment")}


def dapr_deployments() -> dict[str, dict[str, Any]]:
    """The Deployments with a Dapr sidecar, by their app-id."""
    return {
        doc["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"]: doc
        for doc in deployments().values()
        if doc["spec"]["template"]["metadata"].get("annotations", {}).get("dapr.io/enabled")
        == "true"
    }
