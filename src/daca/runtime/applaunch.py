"""What the supervisor starts for one app: its sidecar's config, its command, and the
environment the Dapr CLI gives an app (``APP_ID``, ``APP_PORT``, ``APP_CHANNEL_ADDRESS``,
``DAPR_HTTP_PORT``, ``DAPR_GRPC_PORT``, ``DAPR_METRICS_PORT``, ``PATH`` led by this
interpreter's directory)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from daca.runtime.runfile import AppRunSpec


@dataclass(frozen=True, slots=True)
class AppLaunch:
    """One app to run: its sidecar, and optionally a command with its directory and extra env."""

    config: SidecarConfig
    command: Sequence[str] | None = None
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    grpc_port: int | None = None  # reported as DAPR_GRPC_PORT; a free port when None
    log_file: Path | None = None  # also write the app's output here
    console_output: bool = True  # forward the app's output to the console
    restart: bool = False  # start the command again when it exits non-zero (run files)

    @classmethod
    def from_spec(cls, spec: AppRunSpec, environ: Mapping[str, str] | None = None) -> AppLaunch:
        """The launch for one app of a run file; tokens come from its env, then ``environ``."""
        base = os.environ if environ is None else environ
        merged = {**base, **spec.env}
        config = SidecarConfig(
            app_id=spec.app_id,
            app_port=spec.app_port,
            http_port=spec.dapr_http_port or 0,
            resources_paths=tuple(spec.resources_paths),
            config_file=spec.config_file,
            app_channel_address=spec.app_channel_address,
            max_body_size=spec.max_body_size,
            metrics_port=spec.metrics_port,
            api_token=merged.get("DAPR_API_TOKEN") or None,
            app_api_token=merged.get("APP_API_TOKEN") or None,
        )
        return cls(
            config=config,
            command=spec.command or None,
            cwd=spec.app_dir,
            env=dict(spec.env),
            grpc_port=spec.dapr_grpc_port,
            log_file=_log_file(spec) if spec.app_log_destination != "console" else None,
            console_output=spec.app_log_destination != "file",
            restart=True,
        )


def _log_file(spec: AppRunSpec) -> Path:
    """``<appDirPath>/.dapr/logs/<app-id>_app_<timestamp>.log``, as the Dapr CLI names it."""
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    return spec.logs_dir / f"{spec.app_id}_app_{stamp}.log"


def app_environment(
    launch: AppLaunch, http_port: int, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``environ`` + the launch's env + the variables the Dapr CLI sets (those win)."""
    config = launch.config
    env = {**(os.environ if environ is None else environ), **launch.env}
    env["APP_ID"] = config.app_id
    env["APP_CHANNEL_ADDRESS"] = config.app_channel_address
    env["DAPR_HTTP_PORT"] = str(http_port)
    env["DAPR_GRPC_PORT"] = str(launch.grpc_port or free_port())
    env["DAPR_METRICS_PORT"] = str(free_port())
    if config.app_port is not None:
        env["APP_PORT"] = str(config.app_port)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    return env
