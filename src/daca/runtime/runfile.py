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

The document is a pydantic model of the CLI's ``RunFileConfig`` (:mod:`daca.runtime.documents`
words its errors); like the CLI's ``yaml.v2``, it ignores the many fields daca has no use for.

Precedence, as in the CLI: an app's value wins over ``common``; ``env`` maps are merged key by key.
Resources: the app's ``resourcesPaths`` (and deprecated ``resourcesPath``), else
``<appDirPath>/.dapr/resources`` if it exists, else common's, else ``~/.dapr/components`` if it
exists. The config file: the app's, else ``<appDirPath>/.dapr/config.yaml``, else common's, else
none. An app without ``command`` runs its sidecar only (the CLI warns and does the same).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from annotated_types import MinLen
from pydantic import AfterValidator, BeforeValidator, Field

from daca.runtime.config import DEFAULT_MAX_BODY_SIZE
from daca.runtime.documents import Lenient, StringMap, Where
from daca.runtime.quantity import QuantityError, parse_byte_quantity

logger = logging.getLogger(__name__)

DEFAULT_FILE_NAME = "dapr.yaml"
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


def _blank_is_none(value: object) -> object:
    """A string stripped, and ``None`` if that leaves nothing (Go's zero value: not given)."""
    return (value.strip() or None) if isinstance(value, str) else value


def _port(value: object) -> int | None:
    """A port number; Dapr's ``-1``/``0`` for "pick one" is ``None``."""
    if isinstance(value, bool) or not isinstance(value, int) or value > 65535:
        raise ValueError(f"must be a port number, got {value!r}")
    return value if value > 0 else None


def _byte_size(value: object) -> int:
    """A quantity (``4Mi``) or a number of bytes, as daprd reads ``--max-body-size``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a quantity such as 4Mi")
    try:
        return parse_byte_quantity(str(value))
    except QuantityError as exc:
        raise ValueError(f"is not a byte size: {exc}") from None


def _program_named(command: list[str]) -> list[str]:
    if not command[0].strip():
        raise ValueError("starts with an empty program name")
    return command


Text = Annotated[str | None, BeforeValidator(_blank_is_none)]
Port = Annotated[int | None, BeforeValidator(_port)]
LogDestination = Annotated[
    Literal["file", "console", "fileAndConsole"] | None, BeforeValidator(_blank_is_none)
]


class _Shared(Lenient):
    """The fields ``common`` and every app have (the CLI's ``SharedRunConfig``)."""

    resources_paths: list[Text] = []
    resources_path: Text = None  # deprecated, still read
    config_file_path: Text = None
    env: StringMap = {}
    max_body_size: Annotated[int | None, BeforeValidator(_byte_size)] = None
    app_log_destination: LogDestination = None
    daprd_log_destination: LogDestination = None


class _App(_Shared):
    """One entry of ``apps`` (the CLI's ``RunConfig``)."""

    app_dir_path: Annotated[str, BeforeValidator(_blank_is_none)]
    app_id: Text = Field(None, alias="appID")
    app_port: Port = None
    dapr_http_port: Port = Field(None, alias="daprHTTPPort")
    dapr_grpc_port: Port = Field(None, alias="daprGRPCPort")
    metrics_port: Port = None
    command: Annotated[list[str], MinLen(1), AfterValidator(_program_named)] | None = None
    app_channel_address: Text = None


class _RunFile(Lenient):
    version: Literal[1]
    common: _Shared = _Shared()
    apps: Annotated[list[dict[str, Any]], MinLen(1)]


def load_run_file(path: Path) -> RunFile:
    """Parse and validate the run file at ``path`` (a file, or a directory holding dapr.yaml)."""
    file_path = resolve_run_file_path(path)
    run_file = Where(f"run file {file_path}").validate(
        _RunFile, _read_document(file_path), RunFileError
    )
    apps = [_app(file_path, run_file.common, raw, index) for index, raw in enumerate(run_file.apps)]
    seen: set[str] = set()
    for app in apps:
        if app.app_id in seen:
            where = Where(f"run file {file_path}", f"app {app.app_id!r}")
            raise RunFileError(where.message("appID", "is used by more than one app"))
        seen.add(app.app_id)
    return RunFile(path=file_path, apps=apps)


def _read_document(file_path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(file_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunFileError(f"run file {file_path}: cannot read it: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RunFileError(f"run file {file_path}: invalid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise RunFileError(f"run file {file_path}: expected a YAML mapping")
    return document


def _app(file_path: Path, common: _Shared, raw: dict[str, Any], index: int) -> AppRunSpec:
    """One entry of ``apps``, with ``common`` merged in and its paths resolved."""
    where = Where(f"run file {file_path}", _label(raw, index, file_path.parent))
    app = where.validate(_App, raw, RunFileError)
    app_dir = _existing(where, "appDirPath", app.app_dir_path, file_path.parent)
    if not app_dir.is_dir():
        raise RunFileError(
            where.message("appDirPath", f"names {app_dir}, which is not a directory")
        )
    if app.command is None:
        logger.warning("%s has no command: only its sidecar runs", where)
    sizes = (app.max_body_size, common.max_body_size, DEFAULT_MAX_BODY_SIZE)
    return AppRunSpec(
        app_id=app.app_id or app_dir.name,
        app_dir=app_dir,
        app_port=app.app_port,
        dapr_http_port=app.dapr_http_port,
        dapr_grpc_port=app.dapr_grpc_port,
        metrics_port=app.metrics_port,
        command=list(app.command or []),
        env={**common.env, **app.env},
        resources_paths=_resources(where, common, app, app_dir, file_path.parent),
        config_file=_config_file(where, common, app, app_dir, file_path.parent),
        app_channel_address=app.app_channel_address or "127.0.0.1",
        max_body_size=next(size for size in sizes if size is not None),
        app_log_destination=app.app_log_destination
        or common.app_log_destination
        or DEFAULT_APP_LOG_DESTINATION,
        daprd_log_destination=app.daprd_log_destination
        or common.daprd_log_destination
        or DEFAULT_DAPRD_LOG_DESTINATION,
    )


def _label(raw: dict[str, Any], index: int, base: Path) -> str:
    """How errors name an app: by its appID, which defaults to its directory's name."""
    app_id, app_dir = raw.get("appID"), raw.get("appDirPath")
    if isinstance(app_id, str) and app_id.strip():
        return f"app {app_id.strip()!r}"
    if isinstance(app_dir, str) and app_dir.strip():
        return f"app {_resolved(app_dir.strip(), base).name!r}"
    return f"apps[{index}]"


def _resolved(raw: str, base: Path) -> Path:
    """``raw`` with ``~`` expanded, made absolute against ``base``."""
    return (base / Path(raw).expanduser()).resolve()


def _existing(where: Where, field: str, raw: str, base: Path) -> Path:
    """:func:`_resolved`, which must exist."""
    resolved = _resolved(raw, base)
    if not resolved.exists():
        raise RunFileError(where.message(field, f"names {resolved}, which does not exist"))
    return resolved


def _resource_paths(where: Where, section: _Shared, base: Path, prefix: str = "") -> list[Path]:
    """``resourcesPaths`` plus the deprecated singular ``resourcesPath``, resolved."""
    entries = [(f"resourcesPaths[{i}]", raw) for i, raw in enumerate(section.resources_paths)]
    entries.append(("resourcesPath", section.resources_path))
    entries = [(prefix + field, raw) for field, raw in entries]
    return [_existing(where, field, raw, base) for field, raw in entries if raw]


def _resources(where: Where, common: _Shared, app: _App, app_dir: Path, base: Path) -> list[Path]:
    """App paths > <appDir>/.dapr/resources > common paths > ~/.dapr/components."""
    own = _resource_paths(where, app, app_dir)
    if own:
        return own
    local = app_dir / ".dapr" / "resources"
    if local.is_dir():
        return [local]
    shared = _resource_paths(Where(where.file), common, base, "common.")
    if shared:
        return shared
    home_components = Path.home() / ".dapr" / "components"
    return [home_components] if home_components.is_dir() else []


def _config_file(
    where: Where, common: _Shared, app: _App, app_dir: Path, base: Path
) -> Path | None:
    """App's configFilePath > <appDir>/.dapr/config.yaml > common's > none."""
    if app.config_file_path:
        return _existing(where, "configFilePath", app.config_file_path, app_dir)
    local = app_dir / ".dapr" / "config.yaml"
    if local.is_file():
        return local
    if common.config_file_path:
        return _existing(Where(where.file), "common.configFilePath", common.config_file_path, base)
    return None
