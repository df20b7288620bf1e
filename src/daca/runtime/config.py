"""How one sidecar is configured: the ``daprd``-like flags and environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: daprd's ``--max-body-size`` default, 4Mi.
DEFAULT_MAX_BODY_SIZE = 4 << 20


def daca_home() -> Path:
    """Where the runtime keeps its name registry and bundled-Redis data (``$DACA_HOME``)."""
    configured = os.environ.get("DACA_HOME")
    return Path(configured) if configured else Path.home() / ".daca"


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    """One sidecar, as ``daca sidecar`` / ``daprd`` flags describe it.

    ``http_port`` 0 picks a free port (the bound one is ``Sidecar.http_port``).
    """

    app_id: str
    app_port: int | None = None
    http_port: int = 3500
    resources_paths: tuple[Path, ...] = ()
    config_file: Path | None = None
    app_channel_address: str = "127.0.0.1"
    host: str = "127.0.0.1"
    api_token: str | None = None  # DAPR_API_TOKEN: required from apps calling this sidecar
    app_api_token: str | None = None  # APP_API_TOKEN: sent to the app as dapr-api-token
    home: Path = field(default_factory=daca_home)
    #: Start the bundled redis-server where a Redis component points at a silent loopback port.
    bundle_redis: bool = True
    #: How long to keep asking the app for GET /dapr/subscribe while it comes up (seconds).
    app_start_timeout: float = 30.0
    #: The largest request body the HTTP API reads, in bytes (``--max-body-size``); 0: no limit.
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    #: Serve daprd's Prometheus metrics on this port (``--metrics-port``; 0: a free one).
    #: ``None``: not served (daprd serves them on 9090 by default; two local sidecars would
    #: fight over it, so daca serves them only when asked).
    metrics_port: int | None = None

    @classmethod
    def from_env(cls, **kwargs: object) -> SidecarConfig:
        """Flags from ``kwargs``, tokens from ``DAPR_API_TOKEN`` / ``APP_API_TOKEN``."""
        kwargs.setdefault("api_token", os.environ.get("DAPR_API_TOKEN") or None)
        kwargs.setdefault("app_api_token", os.environ.get("APP_API_TOKEN") or None)
        return cls(**kwargs)  # type: ignore[arg-type]
