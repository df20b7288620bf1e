"""Dapr's multi-app run file (``dapr run -f``), parsed into one ``AppRunSpec`` per app.

The format is the Dapr CLI's (``dapr/cli:pkg/runfileconfig``)::

    version: 1
    common: {resourcesPaths: [...], configFilePath: ..., env: {...}, ...}
    apps:
      - appID: orders            # optional: the name of appDirPath
        appDirPath: ./orders/    # required
        appPort: 8001
        daprHTTPPort: 3501
        command: ["uvicorn", "main:app"]

Path rules, as in the CLI: ``~`` is expanded; relative paths under ``common`` and every
``appDirPath`` are resolved against the run file's directory; other relative paths of an app are
resolved against its ``appDirPath``. Every path must exist.

Precedence, as in the CLI: an app's value wins over ``common``; ``env`` maps are merged key by key.
Resources: the app's ``resourcesPaths`` (and deprecated ``resourcesPath``), else
``<appDirPath>/.dapr/resources`` if it exists, else common's, else ``~/.dapr/components`` if it
exists. The config file: the app's, else ``<appDirPath>/.dapr/config.yaml``, else common's, else
none. An app without ``command`` runs its sidecar only (the CLI warns and does the same).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from daca.runtime.config import DEFAULT_MAX_BODY_SIZE
from daca.runtime.quantity import QuantityError, parse_byte_quantity

logger = logging.getLogger(__name__)

DEFAULT_FILE_NAME = "dapr.yaml"
LOG_DESTINATIONS = frozenset({"file", "console", "fileAndConsole"})
DEFAULT_APP_LOG_DESTINATION = "fileAndConsole"
DEFAULT_DAPRD_LOG_DESTINATION = "file"


class RunFileError(ValueError):
    """The run file is missing, malformed or names a path that does not exist."""


@dataclass(frozen=True, slots=True)
class AppRunSpec:
    """One app of a run file, with ``common`` merged in and every path absolute."""

    app_id: str
    app_dir: Path
    app_port: int | None = None
    dapr_http_port: int | None = None
    dapr_grpc_port: int | None = None
    metrics_port: int | None = None
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    resources_paths: list[Path] = field(default_factory=list)
    config_file: Path | None = None
    app_channel_address: str = "127.0.0.1"
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    app_log_destination: str = DEFAULT_APP_LOG_DESTINATION
    daprd_log_destination: str = DEFAULT_DAPRD_LOG_DESTINATION

    @property
    def logs_dir(self) -> Path:
        """Where the CLI writes this app's log files: ``<appDirPath>/.dapr/logs``."""
        return self.app_dir / ".dapr" / "logs"


@dataclass(frozen=True, slots=True)
class RunFile:
    """A parsed run file: where it is and its apps, in file order."""

    path: Path
    apps: list[AppRunSpec]


def resolve_run_file_path(path: Path) -> Path:
    """``path`` itself, or ``<path>/dapr.yaml`` when ``path`` is a directory."""
    resolved = path.expanduser().absolute()
    return resolved / DEFAULT_FILE_NAME if resolved.is_dir() else resolved


def load_run_file(path: Path) -> RunFile:
    """Parse and validate the run file at ``path`` (a file, or a directory holding dapr.yaml)."""
    file_path = resolve_run_file_path(path)
    document = _read_document(file_path)
    parser = _Parser(file_path)
    common = parser.mapping(document.get("common"), "common")
    raw_apps = document.get("apps")
    if not isinstance(raw_apps, list) or not raw_apps:
        raise parser.error("'apps' must be a non-empty list")
    apps = [parser.app(raw, index, common) for index, raw in enumerate(raw_apps)]
    _check_unique_ids(parser, apps)
    return RunFile(path=file_path, apps=apps)


def _read_document(file_path: Path) -> dict[str, Any]:
    """The YAML mapping in ``file_path``, with a supported ``version``."""
    try:
        document = yaml.safe_load(file_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunFileError(f"run file {file_path}: cannot read it: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RunFileError(f"run file {file_path}: invalid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise RunFileError(f"run file {file_path}: expected a YAML mapping")
    if document.get("version") != 1:
        raise RunFileError(
            f"run file {file_path}: 'version' must be 1, got {document.get('version')!r}"
        )
    return document


def _check_unique_ids(parser: _Parser, apps: list[AppRunSpec]) -> None:
    seen: set[str] = set()
    for app in apps:
        if app.app_id in seen:
            raise parser.error(f"app {app.app_id!r}: appID is used by more than one app")
        seen.add(app.app_id)


class _Parser:
    """Field readers that name the run file (and the app) in every error."""

    def __init__(self, file_path: Path) -> None:
        self.file_path = file_path
        self.base_dir = file_path.parent

    def error(self, message: str) -> RunFileError:
        return RunFileError(f"run file {self.file_path}: {message}")

    def mapping(self, value: object, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{where}: expected a mapping")
        return value

    def app(self, raw: object, index: int, common: Mapping[str, Any]) -> AppRunSpec:
        """One entry of ``apps``, with ``common`` merged in."""
        label = f"apps[{index}]"
        app = self.mapping(raw, label)
        if isinstance(app.get("appID"), str) and app["appID"]:
            label = f"app {app['appID']!r}"
        app_dir = self._app_dir(app, label)
        app_id = self.string(app.get("appID"), label, "appID") or app_dir.name
        label = f"app {app_id!r}"
        return AppRunSpec(
            app_id=app_id,
            app_dir=app_dir,
            app_port=self.port(app.get("appPort"), label, "appPort"),
            dapr_http_port=self.port(app.get("daprHTTPPort"), label, "daprHTTPPort"),
            dapr_grpc_port=self.port(app.get("daprGRPCPort"), label, "daprGRPCPort"),
            metrics_port=self.port(app.get("metricsPort"), label, "metricsPort"),
            command=self.command(app.get("command"), label),
            env=self.env(common, app, label),
            resources_paths=self.resources(common, app, app_dir, label),
            config_file=self.config_file(common, app, app_dir, label),
            app_channel_address=self.string(
                app.get("appChannelAddress"), label, "appChannelAddress"
            )
            or "127.0.0.1",
            max_body_size=self.body_size(app.get("maxBodySize", common.get("maxBodySize")), label),
            app_log_destination=self.destination(common, app, label, "appLogDestination"),
            daprd_log_destination=self.destination(common, app, label, "daprdLogDestination"),
        )

    def _app_dir(self, app: Mapping[str, Any], label: str) -> Path:
        raw = self.string(app.get("appDirPath"), label, "appDirPath")
        if not raw:
            raise self.error(f"{label}: required field 'appDirPath' is missing")
        app_dir = self.path(raw, self.base_dir, label, "appDirPath")
        if not app_dir.is_dir():
            raise self.error(f"{label}: appDirPath {app_dir} is not a directory")
        return app_dir

    def string(self, value: object, label: str, name: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.error(f"{label}: '{name}' must be a string")
        return value.strip()

    def port(self, value: object, label: str, name: str) -> int | None:
        """A port number; absent, or Dapr's ``-1``/``0`` for "pick one", is ``None``."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value > 65535:
            raise self.error(f"{label}: '{name}' must be a port number, got {value!r}")
        return value if value > 0 else None

    def body_size(self, value: object, label: str) -> int:
        """``maxBodySize``: a quantity (``4Mi``) or a number of bytes; absent, daprd's 4Mi."""
        if value is None:
            return DEFAULT_MAX_BODY_SIZE
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.error(f"{label}: 'maxBodySize' must be a quantity such as 4Mi")
        try:
            return parse_byte_quantity(str(value))
        except QuantityError as exc:
            raise self.error(f"{label}: invalid value for 'maxBodySize': {exc}") from None

    def command(self, value: object, label: str) -> list[str]:
        if value is None:
            logger.warning("%s in %s has no command: only its sidecar runs", label, self.file_path)
            return []
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(f"{label}: 'command' must be a non-empty list of strings")
        if not value[0].strip():
            raise self.error(f"{label}: 'command' starts with an empty program name")
        return list(value)

    def env(self, common: Mapping[str, Any], app: Mapping[str, Any], label: str) -> dict[str, str]:
        """Common's env overlaid with the app's (the app wins key by key)."""
        merged: dict[str, str] = {}
        for where, section in (("common", common), (label, app)):
            for key, value in self.mapping(section.get("env"), f"{where}: env").items():
                merged[str(key)] = _env_value(value)
        return merged

    def path(self, raw: str, base: Path, label: str, name: str) -> Path:
        """``raw`` with ``~`` expanded, made absolute against ``base``; it must exist."""
        resolved = (base / Path(raw).expanduser()).resolve()
        if not resolved.exists():
            raise self.error(f"{label}: {name} {resolved} does not exist")
        return resolved

    def paths(self, section: Mapping[str, Any], base: Path, label: str) -> list[Path]:
        """``resourcesPaths`` plus the deprecated singular ``resourcesPath``, resolved."""
        raw = section.get("resourcesPaths") or []
        if not isinstance(raw, list):
            raise self.error(f"{label}: 'resourcesPaths' must be a list")
        singular = self.string(section.get("resourcesPath"), label, "resourcesPath")
        entries = [self.string(item, label, "resourcesPaths") for item in raw]
        entries += [singular] if singular else []
        return [self.path(entry, base, label, "resources path") for entry in entries if entry]

    def resources(
        self, common: Mapping[str, Any], app: Mapping[str, Any], app_dir: Path, label: str
    ) -> list[Path]:
        """App paths > <appDir>/.dapr/resources > common paths > ~/.dapr/components."""
        own = self.paths(app, app_dir, label)
        if own:
            return own
        local = app_dir / ".dapr" / "resources"
        if local.is_dir():
            return [local]
        shared = self.paths(common, self.base_dir, "common")
        if shared:
            return shared
        home_components = Path.home() / ".dapr" / "components"
        return [home_components] if home_components.is_dir() else []

    def config_file(
        self, common: Mapping[str, Any], app: Mapping[str, Any], app_dir: Path, label: str
    ) -> Path | None:
        """App's configFilePath > <appDir>/.dapr/config.yaml > common's > none."""
        own = self.string(app.get("configFilePath"), label, "configFilePath")
        if own:
            return self.path(own, app_dir, label, "configFilePath")
        local = app_dir / ".dapr" / "config.yaml"
        if local.is_file():
            return local
        shared = self.string(common.get("configFilePath"), "common", "configFilePath")
        return self.path(shared, self.base_dir, "common", "configFilePath") if shared else None

    def destination(
        self, common: Mapping[str, Any], app: Mapping[str, Any], label: str, name: str
    ) -> str:
        """A log destination (file, console or fileAndConsole), app over common over default."""
        default = (
            DEFAULT_APP_LOG_DESTINATION
            if name == "appLogDestination"
            else DEFAULT_DAPRD_LOG_DESTINATION
        )
        value = (
            self.string(app.get(name), label, name)
            or self.string(common.get(name), "common", name)
            or default
        )
        if value not in LOG_DESTINATIONS:
            allowed = ", ".join(sorted(LOG_DESTINATIONS))
            raise self.error(f"{label}: '{name}' must be one of {allowed}, got {value!r}")
        return value


def _env_value(value: object) -> str:
    """An env value as the process will see it (YAML booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
