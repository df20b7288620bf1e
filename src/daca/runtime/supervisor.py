"""Run sidecars in this process and their apps as child processes, like ``dapr run``.

For each app, in order: its sidecar starts (in this event loop), then its command starts in a new
session (its own process group) with the environment the Dapr CLI gives an app: ``APP_ID``,
``APP_PORT``, ``APP_CHANNEL_ADDRESS``, ``DAPR_HTTP_PORT`` (the bound sidecar port),
``DAPR_GRPC_PORT`` and ``DAPR_METRICS_PORT``. The last two are free port numbers only: no gRPC API
or metrics endpoint is served. ``PATH`` starts with the directory of this interpreter, so
``python`` or ``uvicorn`` in a command resolve to the running virtual environment.

When it stops: on SIGINT/SIGTERM (exit code 0), as soon as an app command exits non-zero (its code;
a signal death is 128 + signal), or once every app command has exited (0). Apps without a command
run their sidecar until a signal. An app launched with ``restart`` (every app of a run file) that
exits non-zero is instead started again after a backoff (``RestartPolicy``), and the console says
so; only a crash loop (``max_quick_failures`` exits in a row, each soon after its start) ends the
run with the app's code. Every app (and the bundled redis-server) is started with a parent-death
signal, so if the supervisor itself is killed, even by SIGKILL, its children get SIGTERM.

Stopping sends SIGTERM to each app's process group, waits up to ``stop_timeout`` for its
leader, SIGKILLs whatever is left of the group, then stops the sidecars.
A ``ComponentError`` (or ``OSError``, e.g. a port in use) while a sidecar starts, or a command that
cannot be started, is reported as one line; what was started is stopped and the run ends with 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from daca.runtime.applaunch import AppLaunch, app_environment
from daca.runtime.appprocess import AppProcess, OutputSinks
from daca.runtime.config import SidecarConfig
from daca.runtime.console import Console, LoggingConsole
from daca.runtime.errors import ComponentError

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SidecarLike(Protocol):
    """What the supervisor needs of ``daca.runtime.sidecar.Sidecar``."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    @property
    def http_port(self) -> int: ...
    def set_app_process(self, pid: int | None, command: str) -> None: ...


SidecarFactory = Callable[[SidecarConfig], SidecarLike]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a crashed app is restarted: capped exponential backoff, reset by a long enough run."""

    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    #: A run at least this long (seconds) resets the backoff and the crash-loop count.
    stable_after: float = 10.0
    #: This many exits in a row, each within ``stable_after`` of its start, end the run.
    max_quick_failures: int = 5

    def backoff(self, failures: int) -> float:
        """The delay before restart number ``failures`` (1-based) of a quick-failure streak."""
        return min(self.max_backoff, self.initial_backoff * 2.0 ** (failures - 1))


@dataclass
class _Running:
    """An app command the supervisor watches, and its crash streak."""

    launch: AppLaunch
    sidecar: SidecarLike
    app: AppProcess
    started_at: float
    quick_failures: int = 0


class Supervisor:
    """Runs ``AppLaunch`` es: sidecars in this event loop, commands as child process groups."""

    def __init__(
        self,
        *,
        sidecar_factory: SidecarFactory | None = None,
        console: Console | None = None,
        stop_timeout: float = 10.0,
        handle_signals: bool = True,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self._factory = sidecar_factory or _default_factory()
        self._console: Console = console or LoggingConsole()
        self._stop_timeout = stop_timeout
        self._handle_signals = handle_signals
        self._stop_requested = asyncio.Event()
        self._restart = restart_policy or RestartPolicy()
        self._sidecars: list[SidecarLike] = []
        self._apps: list[_Running] = []
        self._logs: list[IO[str]] = []

    def request_stop(self) -> None:
        """Stop everything (what SIGINT/SIGTERM do); ``run`` then returns 0."""
        self._stop_requested.set()

    async def run(self, apps: Sequence[AppLaunch]) -> int:
        """Start every app, wait until it is time to stop, stop everything; the exit code."""
        with self._signal_handlers():
            try:
                if not await self._start_all(apps):
                    return 1
                return await self._wait()
            finally:
                await self._stop_all()

    async def _start_all(self, apps: Sequence[AppLaunch]) -> bool:
        """Start the apps in order; ``False`` (after reporting why) when one cannot start."""
        for launch in apps:
            if self._stop_requested.is_set():
                break
            if not await self._start_one(launch):
                return False
        return True

    async def _start_one(self, launch: AppLaunch) -> bool:
        app_id = launch.config.app_id
        sidecar = self._factory(launch.config)
        try:
            await sidecar.start()
        except (ComponentError, OSError) as exc:  # bad resources, or the port is taken
            self._console.error(f"app {app_id!r}: {_one_line(str(exc))}")
            return False
        self._sidecars.append(sidecar)
        self._console.status(f"Started sidecar for app {app_id!r}. HTTP Port: {sidecar.http_port}")
        if not launch.command:
            self._console.status(f"No application command for app {app_id!r}: sidecar only")
            return True
        return await self._spawn(launch, sidecar)

    async def _spawn(self, launch: AppLaunch, sidecar: SidecarLike) -> bool:
        app = await self._start_command(launch, sidecar)
        if app is None:
            return False
        self._apps.append(_Running(launch, sidecar, app, time.monotonic()))
        return True

    async def _start_command(self, launch: AppLaunch, sidecar: SidecarLike) -> AppProcess | None:
        command = list(launch.command or ())
        app_id = launch.config.app_id
        console = self._console.app_output if launch.console_output else None
        try:
            app = await AppProcess.spawn(
                app_id,
                command,
                cwd=launch.cwd,
                env=app_environment(launch, sidecar.http_port),
                sinks=OutputSinks(console, self._open_log(launch)),
            )
        except OSError as exc:
            self._console.error(f"app {app_id!r}: cannot start {command[0]!r}: {exc.strerror}")
            return None
        sidecar.set_app_process(app.pid, shlex.join(command))
        self._console.status(f"Started app {app_id!r} (pid {app.pid}): {shlex.join(command)}")
        return app

    def _open_log(self, launch: AppLaunch) -> IO[str] | None:
        if launch.log_file is None:
            return None
        launch.log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = launch.log_file.open("a", encoding="utf-8")
        self._logs.append(handle)
        self._console.status(f"Writing logs of app {launch.config.app_id!r} to {launch.log_file}")
        return handle

    async def _wait(self) -> int:
        """0 on a stop request or once all commands exited; the first non-zero exit code that
        is not restarted."""
        stop = asyncio.create_task(self._stop_requested.wait())
        exits = {asyncio.create_task(running.app.wait()): running for running in self._apps}
        try:
            if not exits:
                await stop
            while exits and not stop.done():
                done, _ = await asyncio.wait({stop, *exits}, return_when=asyncio.FIRST_COMPLETED)
                for task in done & exits.keys():
                    running = exits.pop(task)
                    code = self._report_exit(running.launch.config.app_id, task.result())
                    if code == 0:
                        continue
                    if not await self._restarted(running, code):
                        return code
                    exits[asyncio.create_task(running.app.wait())] = running
            return 0
        finally:
            for task in (stop, *exits):
                task.cancel()

    async def _restarted(self, running: _Running, code: int) -> bool:
        """Start a crashed app again after its backoff; ``False`` if it must not be restarted."""
        app_id, policy = running.launch.config.app_id, self._restart
        if not running.launch.restart or self._stop_requested.is_set():
            return False
        quick = time.monotonic() - running.started_at < policy.stable_after
        running.quick_failures = running.quick_failures + 1 if quick else 1
        if running.quick_failures > policy.max_quick_failures:
            self._console.error(
                f"app {app_id!r} keeps crashing ({policy.max_quick_failures} quick restarts): "
                "giving up"
            )
            return False
        delay = policy.backoff(running.quick_failures)
        self._console.status(f"Restarting app {app_id!r} in {delay:.1f} s (exit code {code})")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), delay)
        if self._stop_requested.is_set():
            return True  # stopping anyway; the loop ends on the stop request
        app = await self._start_command(running.launch, running.sidecar)
        if app is None:
            return False
        running.app, running.started_at = app, time.monotonic()
        return True

    def _report_exit(self, app_id: str, code: int) -> int:
        if code == 0:
            self._console.status(f"App {app_id!r} exited successfully")
        else:
            self._console.error(f"app {app_id!r} exited with code {code}")
        return code

    async def _stop_all(self) -> None:
        """Stop every app (in parallel), then every sidecar (in reverse), then close logs."""
        await asyncio.gather(*(running.app.stop(self._stop_timeout) for running in self._apps))
        for sidecar in reversed(self._sidecars):
            await _log_failure(sidecar.stop(), "stopping a sidecar")
        for handle in self._logs:
            handle.close()
        self._apps, self._sidecars, self._logs = [], [], []

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        """SIGINT/SIGTERM request a stop while ``run`` runs (main thread only)."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for signum in STOP_SIGNALS if self._handle_signals else ():
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (ValueError, RuntimeError, NotImplementedError):
                logger.debug("cannot handle %s here (not the main thread?)", signum)
                continue
            installed.append(signum)
        try:
            yield
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self._console.status(f"Received {signal.Signals(signum).name}: stopping apps and sidecars")
        self.request_stop()


async def _log_failure(operation: Awaitable[None], what: str) -> None:
    """Await ``operation``; log (not raise) its failure so the rest of shutdown still runs."""
    try:
        await operation
    except Exception:
        logger.exception("error while %s", what)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _default_factory() -> SidecarFactory:
    """``daca.runtime.sidecar.Sidecar``, imported only when a supervisor is built without one."""
    from daca.runtime.sidecar import Sidecar

    return Sidecar
