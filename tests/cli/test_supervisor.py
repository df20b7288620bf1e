"""The supervisor with real child processes and a fake in-process sidecar."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

from daca.runtime.applaunch import AppLaunch, app_environment
from daca.runtime.config import SidecarConfig
from daca.runtime.runfile import AppRunSpec
from daca.runtime.supervisor import Supervisor
from tests.cli.fakes import FAKE_HTTP_PORT, FakeFactory, RecordingConsole, process_gone, until

# Writes its environment and the pid of a grandchild (in the same process group) to files, then
# waits; with IGNORE_TERM set, it and the grandchild ignore SIGTERM (only SIGKILL ends them).
CHILD = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    out = sys.argv[1]
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    trap = "trap '' TERM; " if os.environ.get("IGNORE_TERM") else ""
    grandchild = subprocess.Popen(["sh", "-c", trap + "sleep 60 & wait"])
    with open(out + ".tmp", "w") as handle:
        json.dump({"env": dict(os.environ), "grandchild": grandchild.pid, "cwd": os.getcwd()},
                  handle)
    os.replace(out + ".tmp", out)
    print("child ready", flush=True)
    time.sleep(60)
    """
)


def child_command(out: Path) -> list[str]:
    return [sys.executable, "-c", CHILD, str(out)]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def supervisor(factory: FakeFactory, console: RecordingConsole, **kwargs: float) -> Supervisor:
    return Supervisor(sidecar_factory=factory, console=console, handle_signals=False, **kwargs)


async def test_child_gets_dapr_env_and_its_whole_group_is_stopped(tmp_path: Path) -> None:
    out = tmp_path / "child.json"
    factory, console = FakeFactory(), RecordingConsole()
    sup = supervisor(factory, console)
    launch = AppLaunch(
        SidecarConfig(app_id="orders", app_port=8123, http_port=0),
        command=child_command(out),
        cwd=tmp_path,
        env={"EXTRA": "yes", "APP_ID": "overridden-by-the-cli-values"},
        grpc_port=50123,
    )
    task = asyncio.create_task(sup.run([launch]))
    await until(out.exists)
    await until(lambda: ("orders", "child ready") in console.lines)
    report = json.loads(out.read_text())
    env = report["env"]

    assert env["APP_ID"] == "orders"
    assert env["APP_PORT"] == "8123"
    assert env["APP_CHANNEL_ADDRESS"] == "127.0.0.1"
    assert env["DAPR_HTTP_PORT"] == str(FAKE_HTTP_PORT)
    assert env["DAPR_GRPC_PORT"] == "50123"
    assert env["DAPR_METRICS_PORT"].isdigit()
    assert env["EXTRA"] == "yes"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert Path(report["cwd"]) == tmp_path
    (sidecar,) = factory.sidecars
    pid, command = sidecar.app_process or (None, "")
    assert pid is not None and command.startswith(sys.executable)

    sup.request_stop()
    assert await task == 0
    assert sidecar.stopped
    assert process_gone(pid)
    assert process_gone(report["grandchild"])


async def test_processes_ignoring_sigterm_are_killed_after_the_grace(tmp_path: Path) -> None:
    out = tmp_path / "child.json"
    factory, console = FakeFactory(), RecordingConsole()
    sup = supervisor(factory, console, stop_timeout=0.5)
    launch = AppLaunch(
        SidecarConfig(app_id="stubborn"), command=child_command(out), env={"IGNORE_TERM": "1"}
    )
    task = asyncio.create_task(sup.run([launch]))
    await until(lambda: ("stubborn", "child ready") in console.lines)
    report = json.loads(out.read_text())
    sup.request_stop()
    assert await task == 0
    pid = factory.sidecars[0].app_process
    assert pid is not None and pid[0] is not None
    assert process_gone(pid[0])
    assert process_gone(report["grandchild"])


async def test_the_app_exit_code_propagates_and_output_is_forwarded() -> None:
    factory, console = FakeFactory(), RecordingConsole()
    code = python("import sys; print('to stdout'); print('to stderr', file=sys.stderr); exit(3)")
    result = await supervisor(factory, console).run([AppLaunch(SidecarConfig("a"), code)])
    assert result == 3
    assert ("a", "to stdout") in console.lines
    assert ("a", "to stderr") in console.lines
    assert console.errors == ["app 'a' exited with code 3"]
    assert factory.sidecars[0].stopped


async def test_a_signal_death_is_128_plus_the_signal() -> None:
    factory, console = FakeFactory(), RecordingConsole()
    code = python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert await supervisor(factory, console).run([AppLaunch(SidecarConfig("a"), code)]) == 137


async def test_component_error_is_one_line_exit_1_and_stops_what_started(tmp_path: Path) -> None:
    out = tmp_path / "child.json"
    factory, console = FakeFactory(failing=frozenset({"broken"})), RecordingConsole()
    apps = [
        AppLaunch(SidecarConfig("first"), command=child_command(out)),
        AppLaunch(SidecarConfig("broken"), command=python("print('never')")),
    ]
    assert await supervisor(factory, console).run(apps) == 1
    assert console.errors == ["app 'broken': components.yaml: component 'statestore': bad {field}"]
    first, broken = factory.sidecars
    assert first.stopped and not broken.started
    assert broken.app_process is None
    pid = first.app_process
    assert pid is not None and pid[0] is not None and process_gone(pid[0])


async def test_a_command_that_cannot_start_is_exit_1() -> None:
    factory, console = FakeFactory(), RecordingConsole()
    launch = AppLaunch(SidecarConfig("a"), command=["/nonexistent/program"])
    assert await supervisor(factory, console).run([launch]) == 1
    assert len(console.errors) == 1 and "cannot start '/nonexistent/program'" in console.errors[0]
    assert factory.sidecars[0].stopped


async def test_runs_until_every_app_has_exited(tmp_path: Path) -> None:
    release = tmp_path / "release"
    waiter = python(
        f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)"
    )
    factory, console = FakeFactory(), RecordingConsole()
    apps = [
        AppLaunch(SidecarConfig("quick"), python("pass")),
        AppLaunch(SidecarConfig("slow"), waiter),
    ]
    task = asyncio.create_task(supervisor(factory, console).run(apps))
    await until(lambda: "App 'quick' exited successfully" in console.statuses)
    assert not task.done()
    release.touch()
    assert await task == 0
    assert all(sidecar.stopped for sidecar in factory.sidecars)


async def test_one_failing_app_stops_the_others(tmp_path: Path) -> None:
    out = tmp_path / "child.json"
    factory, console = FakeFactory(), RecordingConsole()
    apps = [
        AppLaunch(SidecarConfig("steady"), child_command(out)),
        AppLaunch(
            SidecarConfig("crashing"),
            python(
                f"import os, time\nwhile not os.path.exists({str(out)!r}): time.sleep(0.02)\n"
                "exit(2)"
            ),
        ),
    ]
    assert await supervisor(factory, console).run(apps) == 2
    steady = factory.sidecars[0].app_process
    assert steady is not None and steady[0] is not None and process_gone(steady[0])
    assert process_gone(json.loads(out.read_text())["grandchild"])


async def test_sidecar_only_runs_until_sigint() -> None:
    factory, console = FakeFactory(), RecordingConsole()
    sup = Supervisor(sidecar_factory=factory, console=console)
    task = asyncio.create_task(sup.run([AppLaunch(SidecarConfig("solo"))]))
    await until(lambda: bool(factory.sidecars) and factory.sidecars[0].started)
    assert not task.done()
    os.kill(os.getpid(), signal.SIGINT)
    assert await task == 0
    assert factory.sidecars[0].stopped
    assert any("SIGINT" in status for status in console.statuses)


async def test_run_file_app_output_can_go_to_a_log_file_only(tmp_path: Path) -> None:
    spec = AppRunSpec(
        app_id="logged",
        app_dir=tmp_path,
        command=python("print('into the file')"),
        app_log_destination="file",
    )
    launch = AppLaunch.from_spec(spec, environ={})
    factory, console = FakeFactory(), RecordingConsole()
    assert await supervisor(factory, console).run([launch]) == 0
    assert console.lines == []
    assert launch.log_file is not None and launch.log_file.parent == tmp_path / ".dapr" / "logs"
    assert launch.log_file.read_text() == "into the file\n"


def test_launch_from_spec_maps_the_run_file_fields(tmp_path: Path) -> None:
    spec = AppRunSpec(
        app_id="orders",
        app_dir=tmp_path,
        app_port=8001,
        dapr_http_port=3501,
        command=["uvicorn", "main:app"],
        env={"DAPR_API_TOKEN": "from-run-file"},
        resources_paths=[tmp_path / "components"],
        app_log_destination="console",
    )
    launch = AppLaunch.from_spec(spec, environ={"APP_API_TOKEN": "from-env"})
    config = launch.config
    assert (config.app_id, config.app_port, config.http_port) == ("orders", 8001, 3501)
    assert config.resources_paths == (tmp_path / "components",)
    assert (config.api_token, config.app_api_token) == ("from-run-file", "from-env")
    assert (launch.cwd, launch.log_file, launch.console_output) == (tmp_path, None, True)
    no_port = AppLaunch.from_spec(AppRunSpec(app_id="x", app_dir=tmp_path), environ={})
    assert no_port.config.http_port == 0 and no_port.command is None


def test_app_environment_lets_cli_values_win_and_omits_unset_app_port() -> None:
    launch = AppLaunch(SidecarConfig("x"), env={"DAPR_HTTP_PORT": "1", "KEEP": "k"})
    env = app_environment(launch, 3600, environ={"PATH": "/usr/bin", "APP_PORT": "stale"})
    assert env["DAPR_HTTP_PORT"] == "3600"
    assert env["KEEP"] == "k"
    assert env["APP_PORT"] == "stale"  # inherited as is: the app has no port of its own
    assert env["PATH"] == os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin"])


async def test_sigterm_stops_too() -> None:
    factory, console = FakeFactory(), RecordingConsole()
    sup = Supervisor(sidecar_factory=factory, console=console)
    task = asyncio.create_task(sup.run([AppLaunch(SidecarConfig("solo"))]))
    await until(lambda: bool(factory.sidecars) and factory.sidecars[0].started)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await task == 0
