"""Real ``daprd`` processes on one machine, resolving app-ids only to 127.0.0.1.

daprd's self-hosted default name resolution is mDNS, which multicasts off the loopback
interface. Every daprd started here instead gets a ``Configuration`` that selects the
``kubernetes`` resolver with a ``template``: the resolver only formats the template
(app-id -> ``127.0.0.1:<that app's internal gRPC port>``) and looks the IP literal up, which
needs no network. Every listener is bound to 127.0.0.1; metrics are off; placement and scheduler
are off (no address given). Used by the test suite (the ``daprd`` engine) and the benchmarks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port

#: Upper bound for a daprd to answer /v1.0/healthz (it usually takes ~0.2 s).
START_TIMEOUT = 30.0


class DaprdStartError(RuntimeError):
    """daprd exited or did not become ready; the message ends with the tail of its log."""


def loopback_configuration(ports: dict[str, int], name: str = "loopback") -> str:
    """A daprd ``Configuration`` resolving each app-id in ``ports`` to 127.0.0.1:<port>."""
    branches = "".join(
        f'{{{{{"if" if i == 0 else "else if"} eq .ID "{app_id}"}}}}127.0.0.1:{port}'
        for i, (app_id, port) in enumerate(sorted(ports.items()))
    )
    template = branches + "{{else}}127.0.0.1:1{{end}}" if ports else "127.0.0.1:1"
    return (
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\n"
        f"metadata:\n  name: {name}\nspec:\n  nameResolution:\n    component: kubernetes\n"
        f"    configuration:\n      template: '{template}'\n"
    )


@dataclass
class LoopbackNetwork:
    """The internal gRPC port of every app-id a test may start, and the config that maps them.

    The ports must be known before the first daprd starts (each daprd reads the mapping once),
    so the app-ids are declared up front; starting a daprd for another id is a ``KeyError``.
    """

    directory: Path
    app_ids: Iterable[str]
    ports: dict[str, int] = field(init=False)
    config_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.ports = {app_id: free_port() for app_id in self.app_ids}
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file = self.directory / "loopback-config.yaml"
        self.config_file.write_text(loopback_configuration(self.ports))

    def internal_port(self, app_id: str) -> int:
        try:
            return self.ports[app_id]
        except KeyError:
            declared = ", ".join(sorted(self.ports))
            raise KeyError(
                f"app-id {app_id!r} is not declared on this daprd network ({declared})"
            ) from None


class DaprdSidecar:
    """One daprd process for a ``SidecarConfig``; ``start``/``stop`` may be called repeatedly.

    The HTTP port is chosen once (``config.http_port`` or a free port) and kept across restarts,
    like a daca sidecar with a fixed port.
    """

    def __init__(self, binary: Path, config: SidecarConfig, network: LoopbackNetwork, logs: Path):
        self.binary = binary
        self.config = config
        self.network = network
        self.log_file = logs / f"daprd-{config.app_id}-{os.getpid()}-{id(self)}.log"
        self._http_port = config.http_port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        cfg = self.config
        command = [
            str(self.binary),
            "--app-id", cfg.app_id,
            "--mode", "standalone",
            "--dapr-http-port", str(self._http_port),
            "--dapr-grpc-port", str(free_port()),
            "--dapr-internal-grpc-port", str(self.network.internal_port(cfg.app_id)),
            "--dapr-listen-addresses", "127.0.0.1",
            "--dapr-internal-grpc-listen-address", "127.0.0.1",
            "--enable-metrics=false",
            "--app-channel-address", cfg.app_channel_address,
            "--config", str(self.network.config_file),
            "--log-level", "info",
        ]  # fmt: skip
        if cfg.config_file is not None:
            command += ["--config", str(cfg.config_file)]
        command += ["--max-body-size", str(cfg.max_body_size)]
        if cfg.app_port is not None:
            command += ["--app-port", str(cfg.app_port), "--app-protocol", "http"]
        for path in cfg.resources_paths:
            command += ["--resources-path", str(path)]
        return command

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DAPR_API_TOKEN", "APP_API_TOKEN")}
        if self.config.api_token:
            env["DAPR_API_TOKEN"] = self.config.api_token
        if self.config.app_api_token:
            env["APP_API_TOKEN"] = self.config.app_api_token
        return env

    async def start(self, *, wait_ready: bool = True) -> None:
        assert self._process is None, "already started"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._process = self._spawn()
        await self._wait_until_ready("/v1.0/healthz" if wait_ready else "/v1.0/healthz/outbound")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as log:
            return subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def _wait_until_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self._process is not None and self._process.poll() is not None:
                    code = self._process.returncode
                    raise DaprdStartError(f"daprd exited with {code}\n{self.log_tail()}")
                try:
                    answer = await client.get(f"http://127.0.0.1:{self._http_port}{path}")
                    if answer.status_code == 204:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise DaprdStartError(
                        f"daprd not ready on {path} in {START_TIMEOUT} s\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait)

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no daprd log)"
        return "\n".join(text[-lines:])
