"""The two engines a test can run a sidecar on: the daca runtime and real daprd.

A test that takes the ``engine`` fixture runs once per engine (``daca``, and ``daprd`` marked
``daprd``). It starts sidecars with ``engine.sidecar(config)``; the ``SidecarConfig`` is the
same for both, so every difference a test shows is a difference of the engines. Where the two
deliberately differ (``docs/runtime.md``), the test asserts each engine's answer explicitly
through ``engine.name``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from daca.realdapr.build import DAPRD_VERSION, daprd_path
from daca.realdapr.daprd import DaprdSidecar, LoopbackNetwork
from daca.runtime.config import SidecarConfig
from daca.runtime.sidecar import Sidecar
from tests.runtime.harness import running_sidecar

ENGINES = ("daca", "daprd")

T = TypeVar("T")

#: Every app-id the suites start sidecars for; the daprd network resolves exactly these.
APP_IDS = (
    "myapp",
    "caller",
    "callee",
    "orders-app",
    "publisher",
    "subscriber",
    "chat-service",
    "agent-memory-service",
    "nobody",  # declared, never started: invoking it finds no sidecar (tests/runtime/test_invoke)
)


class SidecarHandle(Protocol):
    """What tests use of a running sidecar, on either engine."""

    @property
    def http_port(self) -> int: ...
    async def stop(self) -> None: ...


class Engine(Protocol):
    name: str

    def sidecar(
        self, config: SidecarConfig, *, wait_ready: bool = True
    ) -> contextlib.AbstractAsyncContextManager[SidecarHandle]: ...

    async def restart(self, handle: SidecarHandle) -> None:
        """Start a stopped sidecar again, on the same HTTP port."""


class DacaEngine:
    """Sidecars of the daca runtime, in this process."""

    name = "daca"

    def sidecar(
        self, config: SidecarConfig, *, wait_ready: bool = True
    ) -> contextlib.AbstractAsyncContextManager[Sidecar]:
        return running_sidecar(config, wait_ready=wait_ready)

    async def restart(self, handle: SidecarHandle) -> None:
        assert isinstance(handle, Sidecar)
        await handle.start()


@dataclass
class DaprdEngine:
    """daprd processes on a loopback-only name-resolution network."""

    binary: Path
    network: LoopbackNetwork
    logs: Path
    name: str = "daprd"

    @contextlib.asynccontextmanager
    async def sidecar(
        self, config: SidecarConfig, *, wait_ready: bool = True
    ) -> AsyncIterator[DaprdSidecar]:
        sidecar = DaprdSidecar(self.binary, config, self.network, self.logs)
        await sidecar.start(wait_ready=wait_ready)
        try:
            yield sidecar
        finally:
            await sidecar.stop()

    async def restart(self, handle: SidecarHandle) -> None:
        assert isinstance(handle, DaprdSidecar)
        await handle.start()


def per_engine(engine: Engine, *, daca: T, daprd: T) -> T:
    """The expected answer on this engine, where the engines deliberately differ.

    Every use names a row of the differences table in ``docs/runtime.md``.
    """
    return daca if engine.name == "daca" else daprd


def find_daprd() -> Path | None:
    """``$DACA_DAPRD``, else the cached build of ``DAPRD_VERSION``, else None."""
    configured = os.environ.get("DACA_DAPRD")
    if configured:
        return Path(configured)
    cached = daprd_path(DAPRD_VERSION)
    return cached if cached.is_file() else None


def daprd_version(binary: Path) -> str:
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or result.stderr.strip()


def go_available() -> bool:
    return shutil.which("go") is not None
