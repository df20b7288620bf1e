"""Supervision: crashed apps are restarted with backoff; nothing outlives a killed supervisor.

The restart tests use the in-process supervisor with a fake sidecar; the crash tests run the
real ``daca run -f`` as a subprocess (real sidecar, real bundled redis-server) and SIGKILL it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daca.runtime.applaunch import AppLaunch
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port, is_listening
from daca.runtime.supervisor import RestartPolicy, Supervisor
from tests.cli.fakes import FakeFactory, RecordingConsole, process_gone, until, wait_until

QUICK = RestartPolicy(
    initial_backoff=0.01, max_backoff=0.05, stable_after=5.0, max_quick_failures=3
)


def crash_then_stay(counter: Path, crashes: int) -> list[str]:
    """A command that exits 3 on its first ``crashes`` starts, then keeps running."""
    code = textwrap.dedent(
        f"""
        import pathlib, sys, time
        counter = pathlib.Path({str(counter)!r})
        starts = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(starts))
        print("start", starts, flush=True)
        if starts <= {crashes}:
            sys.exit(3)
        time.sleep(60)
        """
    )
    return [sys.executable, "-c", code]


async def test_a_crashed_app_is_restarted_with_backoff_and_the_console_says_so(
    tmp_path: Path,
) -> None:
    counter = tmp_path / "starts"
    factory, console = FakeFactory(), RecordingConsole()
    supervisor = Supervisor(
        sidecar_factory=factory, console=console, handle_signals=False, restart_policy=QUICK
    )
    launch = AppLaunch(SidecarConfig("flaky"), crash_then_stay(counter, 2), restart=True)
    task = asyncio.create_task(supervisor.run([launch]))
    await until(lambda: ("flaky", "start 3") in console.lines)
    assert not task.done()
    restarts = [s for s in console.statuses if s.startswith("Restarting app 'flaky'")]
    assert restarts == [
        "Restarting app 'flaky' in 0.0 s (exit code 3)",
        "Restarting app 'flaky' in 0.0 s (exit code 3)",
    ]
    assert console.errors == ["app 'flaky' exited with code 3"] * 2
    supervisor.request_stop()
    assert await task == 0
    assert factory.sidecars[0].stopped and len(factory.sidecars) == 1  # the sidecar stayed up


async def test_a_crash_loop_gives_up_with_the_exit_code(tmp_path: Path) -> None:
    factory, console = FakeFactory(), RecordingConsole()
    supervisor = Supervisor(
        sidecar_factory=factory, console=console, handle_signals=False, restart_policy=QUICK
    )
    launch = AppLaunch(SidecarConfig("broken"), [sys.executable, "-c", "exit(4)"], restart=True)
    assert await supervisor.run([launch]) == 4
    assert console.errors[-1] == "app 'broken' keeps crashing (3 quick restarts): giving up"
    assert sum(s.startswith("Restarting") for s in console.statuses) == 3


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(initial_backoff=0.5, max_backoff=3.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


# --- a killed supervisor ------------------------------------------------------------------------

APP = textwrap.dedent(
    """
    import os, pathlib, sys, time
    pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
    time.sleep(120)
    """
)


def run_file(tmp_path: Path, redis_port: int) -> Path:
    components = tmp_path / "components"
    components.mkdir(exist_ok=True)
    (components / "state.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\n"
        "spec:\n  type: state.redis\n  version: v1\n  metadata:\n"
        f"  - name: redisHost\n    value: localhost:{redis_port}\n"
    )
    app = tmp_path / "app.py"
    app.write_text(APP)
    path = tmp_path / "dapr.yaml"
    path.write_text(
        "version: 1\ncommon:\n  resourcesPath: ./components\n  appLogDestination: console\n"
        "apps:\n  - appID: lonely\n    appDirPath: .\n"
        f"    command: [{sys.executable!r}, 'app.py', 'app.pid']\n"
    )
    return path


def start_daca(path: Path, home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DACA_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "daca", "run", "-f", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.redis
def test_a_sigkilled_supervisor_leaves_nothing_running_and_a_rerun_starts_cleanly(
    tmp_path: Path,
) -> None:
    redis_port = free_port()
    path = run_file(tmp_path, redis_port)
    pid_file = tmp_path / "app.pid"
    for _ in range(2):  # the second run must start as cleanly as the first
        pid_file.unlink(missing_ok=True)
        daca = start_daca(path, tmp_path / "home")
        try:
            wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=30)
            app_pid = int(pid_file.read_text())
            assert is_listening("127.0.0.1", redis_port), "the bundled redis-server runs"
            os.kill(daca.pid, signal.SIGKILL)
            daca.wait()
            wait_until(lambda pid=app_pid: process_gone(pid), timeout=15)  # type: ignore[misc]
            wait_until(lambda: not is_listening("127.0.0.1", redis_port), timeout=15)
        finally:
            if daca.poll() is None:
                os.killpg(daca.pid, signal.SIGKILL)
                daca.wait()
