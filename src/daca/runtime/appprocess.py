"""App commands as child process groups: start, forward output line by line, stop for good.

Each command runs in a new session, so its process group holds it and everything it starts,
and with a parent-death signal (``parentdeath``), so it ends when its supervisor dies.
Stopping sends SIGTERM to the group, waits for the leader, then SIGKILLs whatever is left and
waits (briefly) for the group to vanish, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from daca.runtime.parentdeath import die_with_parent

LINE_LIMIT = 1024 * 1024  # longest app output line forwarded (bytes)
GROUP_EXIT_TIMEOUT = 1.0  # seconds for a SIGKILLed group to vanish
PUMP_DRAIN_TIMEOUT = 2.0  # seconds to forward output left in the pipes once an app is gone


class AppProcess:
    """One running app command: its output pumps and its process group."""

    def __init__(
        self, app_id: str, process: asyncio.subprocess.Process, sinks: OutputSinks
    ) -> None:
        self.app_id = app_id
        self.process = process
        self._pumps = [
            asyncio.create_task(_pump(stream, app_id, sinks))
            for stream in (process.stdout, process.stderr)
            if stream is not None
        ]

    @classmethod
    async def spawn(
        cls,
        app_id: str,
        command: Sequence[str],
        *,
        cwd: Path | None,
        env: Mapping[str, str],
        sinks: OutputSinks,
    ) -> AppProcess:
        """Start ``command`` in a new session (its own process group), output piped to ``sinks``.

        Raises ``OSError`` when the program cannot be started.
        """
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent,
            limit=LINE_LIMIT,
        )
        return cls(app_id, process, sinks)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait(self) -> int:
        """The exit code, shell style: 128 + N when killed by signal N."""
        code = await self.process.wait()
        return 128 - code if code < 0 else code

    async def stop(self, grace: float) -> None:
        """SIGTERM the group, wait up to ``grace`` seconds for its leader, SIGKILL what is left."""
        _signal_group(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), grace)
        _signal_group(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        await _group_gone(self.process.pid, GROUP_EXIT_TIMEOUT)
        await _finish(self._pumps, PUMP_DRAIN_TIMEOUT)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the group; ``False`` once the group has no process left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


async def _group_gone(pgid: int, grace: float) -> None:
    """Wait (up to ``grace`` seconds) until the killed group has no process left.

    Orphans that nobody reaps (no init in a container) stay zombies and count until ``grace``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        if not _signal_group(pgid, 0):
            return
        await asyncio.sleep(0.01)


class OutputSinks:
    """Where one app's output lines go: a console callable ``(app_id, line)`` and/or a log file."""

    def __init__(self, console: Callable[[str, str], None] | None, log: IO[str] | None) -> None:
        self.console = console
        self.log = log

    def write(self, app_id: str, line: str) -> None:
        if self.console is not None:
            self.console(app_id, line)
        if self.log is not None:
            self.log.write(line + "\n")
            self.log.flush()


async def _pump(stream: asyncio.StreamReader, app_id: str, sinks: OutputSinks) -> None:
    """Forward ``stream`` line by line until EOF (a line over the limit is dropped)."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:
            sinks.write(app_id, f"[a line longer than {LINE_LIMIT} bytes was dropped]")
            continue
        if not line:
            return
        sinks.write(app_id, line.decode(errors="replace").rstrip("\r\n"))


async def _finish(tasks: Sequence[asyncio.Task[None]], grace: float) -> None:
    """Let ``tasks`` drain the pipes; cancel any still running after ``grace`` seconds."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
