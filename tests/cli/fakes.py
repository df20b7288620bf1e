"""In-process stand-ins for the sidecar and the console, and polling helpers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from daca.runtime.config import SidecarConfig
from daca.runtime.errors import ComponentError

FAKE_HTTP_PORT = 45123


class FakeSidecar:
    """Records what the supervisor asks of it; ``start`` fails for app-ids in ``failing``."""

    def __init__(self, config: SidecarConfig, failing: frozenset[str] = frozenset()) -> None:
        self.config = config
        self.failing = failing
        self.started = False
        self.stopped = False
        self.app_process: tuple[int | None, str] | None = None

    async def start(self) -> None:
        if self.config.app_id in self.failing:
            raise ComponentError("components.yaml: component 'statestore':\n bad {field}")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    @property
    def http_port(self) -> int:
        return self.config.http_port or FAKE_HTTP_PORT

    def set_app_process(self, pid: int | None, command: str) -> None:
        self.app_process = (pid, command)


class FakeFactory:
    """A sidecar factory that keeps every sidecar it built."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.sidecars: list[FakeSidecar] = []

    def __call__(self, config: SidecarConfig) -> FakeSidecar:
        sidecar = FakeSidecar(config, self.failing)
        self.sidecars.append(sidecar)
        return sidecar


class RecordingConsole:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.statuses: list[str] = []
        self.errors: list[str] = []

    def app_output(self, app_id: str, line: str) -> None:
        self.lines.append((app_id, line))

    def status(self, message: str) -> None:
        self.statuses.append(message)

    def error(self, message: str) -> None:
        self.errors.append(message)


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie nobody reaped counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """``until`` for synchronous tests."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
