"""The ``daca`` command line, in process with click's CliRunner and a fake sidecar factory."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daca.cli.main import CliContext, cli, default_resources_paths, find_run_file
from daca.cli.output import format_age
from daca.runtime.config import SidecarConfig, daca_home
from daca.runtime.nameregistry import AppRecord, NameRegistry
from tests.cli.fakes import FakeFactory, FakeSidecar


class InterruptingSidecar(FakeSidecar):
    """Starts, then sends this process SIGINT, as Ctrl-C in a terminal would."""

    async def start(self) -> None:
        await super().start()
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures the root logger; put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME, and the current directory set to a fresh project directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return tmp_path / "home"


def invoke(args: list[str], factory: FakeFactory | None = None) -> Result:
    obj = CliContext(sidecar_factory=factory or FakeFactory())
    return CliRunner().invoke(cli, args, obj=obj, catch_exceptions=False)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_list_shows_registered_apps_as_table_and_json() -> None:
    assert invoke(["list"]).output == "No daca apps are running.\n"
    record = AppRecord(
        app_id="chat",
        host="127.0.0.1",
        http_port=3500,
        app_port=8010,
        pid=os.getpid(),
        started_at=time.time() - 125,
        app_command="uvicorn chat:app",
        app_pid=None,
        peer_token="s3cret-peer-token",
    )
    NameRegistry(daca_home()).register(record)

    header, row = invoke(["list"]).output.splitlines()
    assert header.split() == ["APP", "ID", "HTTP", "PORT", "APP", "PORT", "PID", "AGE", "COMMAND"]
    assert row.split() == ["chat", "3500", "8010", str(os.getpid()), "2m", "uvicorn", "chat:app"]
    output = invoke(["list", "--output", "json"]).output
    (listed,) = json.loads(output)
    assert listed["app_id"] == "chat" and listed["app_port"] == 8010
    assert "peer_token" not in listed and "s3cret-peer-token" not in output  # never printed


def test_list_ignores_records_of_dead_processes() -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    NameRegistry(daca_home()).register(
        AppRecord("gone", "127.0.0.1", 3501, None, int(dead.stdout), time.time())
    )
    assert invoke(["list", "-o", "json"]).output.strip() == "[]"


def test_run_starts_sidecar_and_app_and_returns_its_exit_code(home: Path) -> None:
    Path("components").mkdir()
    factory = FakeFactory()
    code = "import os; print('port', os.environ['DAPR_HTTP_PORT']); exit(4)"
    result = invoke(
        ["run", "--app-id", "orders", "--app-port", "8001", "--", *python(code)], factory
    )
    assert result.exit_code == 4
    assert "== APP - orders == port 45123" in result.stdout
    assert "Error: app 'orders' exited with code 4" in result.stderr
    (sidecar,) = factory.sidecars
    config = sidecar.config
    assert (config.app_id, config.app_port, config.http_port) == ("orders", 8001, 0)
    assert config.resources_paths == (Path.cwd() / "components",)


def test_run_without_double_dash_keeps_the_commands_own_options(home: Path) -> None:
    result = invoke(
        ["run", "-a", "x", "-H", "3999", *python("import sys; exit(len(sys.argv))"), "-m", "--flag"]
    )
    assert result.exit_code == 3  # ["-c", "-m", "--flag"]


def test_max_body_size_takes_daprd_quantities(home: Path) -> None:
    factory = FakeFactory()
    for flag, size in (("1Mi", 1 << 20), ("1500", 1500), ("1.5k", 1500), ("0", 0)):
        result = invoke(["run", "-a", "x", "--max-body-size", flag, "--", *python("")], factory)
        assert result.exit_code == 0, result.output
        assert factory.sidecars[-1].config.max_body_size == size
    result = CliRunner().invoke(cli, ["run", "--max-body-size", "0.5", "--", *python("")])
    assert result.exit_code == 2
    message = "Invalid value for '--max-body-size': cannot get bytes from resource quantity"
    assert message in result.output


def test_run_without_app_id_generates_one(home: Path) -> None:
    factory = FakeFactory()
    assert invoke(["run", "--", *python("pass")], factory).exit_code == 0
    assert factory.sidecars[0].config.app_id.startswith("daca-app-")


def test_sidecar_runs_until_interrupted_with_daprd_defaults(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAPR_API_TOKEN", "secret-token")
    built: list[SidecarConfig] = []

    def interrupting(config: SidecarConfig) -> FakeSidecar:
        built.append(config)
        return InterruptingSidecar(config)

    runner_obj = CliContext(sidecar_factory=interrupting)
    result = CliRunner().invoke(cli, ["sidecar", "--app-id", "solo"], obj=runner_obj)
    assert result.exit_code == 0, result.output
    (config,) = built
    assert (config.http_port, config.api_token, config.app_port) == (3500, "secret-token", None)
    assert config.resources_paths == ()
    assert config.max_body_size == 4 << 20  # daprd's --max-body-size default
    assert "Received SIGINT" in result.stdout


def test_sidecar_requires_an_app_id() -> None:
    result = invoke(["sidecar"])
    assert result.exit_code == 2
    assert "--app-id" in result.output


def test_component_error_is_one_line_and_exit_1(home: Path) -> None:
    factory = FakeFactory(failing=frozenset({"broken"}))
    result = invoke(["run", "--app-id", "broken", "--", *python("print('never')")], factory)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: app 'broken': components.yaml: component 'statestore': bad {field}\n"
    )
    assert "never" not in result.stdout


def write_run_file(directory: Path, apps: str) -> Path:
    for name in ("orders", "checkout"):
        (directory / name).mkdir(parents=True, exist_ok=True)
    path = directory / "dapr.yaml"
    path.write_text(
        "version: 1\ncommon:\n  appLogDestination: console\napps:\n"
        + textwrap.indent(textwrap.dedent(apps), "  ")
    )
    return path


def test_run_file_runs_every_app(home: Path, tmp_path: Path) -> None:
    exe = json.dumps(sys.executable)
    write_run_file(
        tmp_path / "system",
        f"""
        - appID: orders
          appDirPath: orders
          appPort: 8001
          daprHTTPPort: 3501
          command: [{exe}, -c, "import os; print(os.environ['APP_ID'], os.getcwd())"]
        - appDirPath: checkout
          env: {{GREETING: hi}}
          command: [{exe}, -c, "import os; print(os.environ['GREETING'])"]
        """,
    )
    factory = FakeFactory()
    result = invoke(["run", "-f", str(tmp_path / "system")], factory)
    assert result.exit_code == 0, result.output
    assert f"== APP - orders == orders {tmp_path / 'system' / 'orders'}" in result.stdout
    assert "== APP - checkout == hi" in result.stdout
    assert [s.config.http_port for s in factory.sidecars] == [3501, 0]


def test_a_bad_run_file_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    run_file = write_run_file(tmp_path, "- appID: orders\n")
    result = invoke(["run", "-f", str(run_file)])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: run file {run_file}: app 'orders': field 'appDirPath' is required"
    )


def test_run_file_and_command_together_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    result = invoke(["run", "-f", str(tmp_path), "--", "echo"])
    assert result.exit_code == 2
    assert "either --run-file or a command" in result.output


def test_up_finds_the_run_file_in_a_parent_and_prints_where_to_go(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = json.dumps(sys.executable)
    write_run_file(
        tmp_path,
        f"""
        - appID: chat-service
          appDirPath: orders
          appPort: 8010
          daprHTTPPort: 3500
          command: [{exe}, -c, "pass"]
        """,
    )
    monkeypatch.chdir(tmp_path / "checkout")
    result = invoke(["up"])
    assert result.exit_code == 0, result.output
    assert "chat-service: http://127.0.0.1:8010  (sidecar: http://127.0.0.1:3500)" in result.stdout
    chat_with_it = "chat with it: http://127.0.0.1:8010/ui in a browser, or POST "
    assert f"{chat_with_it}http://127.0.0.1:8010/chat/" in result.stdout
    assert "LLM provider: offline" in result.stdout


def test_up_without_a_run_file_fails(home: Path) -> None:
    result = invoke(["up"])
    assert result.exit_code == 1
    assert "no dapr.yaml in" in result.stderr


def test_find_run_file_walks_up(tmp_path: Path) -> None:
    (tmp_path / "dapr.yaml").write_text("version: 1\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_run_file(nested) == tmp_path / "dapr.yaml"


def test_default_resources_prefer_local_components(tmp_path: Path) -> None:
    home_components = tmp_path / "home" / ".dapr" / "components"
    assert default_resources_paths(tmp_path, tmp_path / "home") == ()
    home_components.mkdir(parents=True)
    assert default_resources_paths(tmp_path, tmp_path / "home") == (home_components,)
    (tmp_path / "components").mkdir()
    assert default_resources_paths(tmp_path, tmp_path / "home") == (tmp_path / "components",)


def test_log_level_configures_the_root_logger() -> None:
    assert invoke(["--log-level", "debug", "list"]).exit_code == 0
    assert logging.getLogger().level == logging.DEBUG
    assert invoke(["--log-level", "WARN", "list"]).exit_code == 0
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize(("seconds", "age"), [(5, "5s"), (61, "1m"), (7200, "2h"), (90000, "1d")])
def test_format_age(seconds: float, age: str) -> None:
    assert format_age(seconds) == age


def test_python_dash_m_daca_is_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daca", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert "Usage: daca" in result.stdout


# The supervisor records the app's PID just after starting it, so the app may ask first: it
# asks until the PID is there (bounded), as a real app reading its own metadata would.
APP_ASKING_ITS_SIDECAR = """
import json, os, time, urllib.request
url = f"http://127.0.0.1:{os.environ['DAPR_HTTP_PORT']}/v1.0/metadata"
for _ in range(200):
    with urllib.request.urlopen(url, timeout=10) as response:
        metadata = json.load(response)
    if "appPID" in metadata["extended"]:
        break
    time.sleep(0.05)
print("metadata", metadata["id"], metadata["extended"].get("appPID") == str(os.getpid()))
"""


def test_run_with_the_real_sidecar(home: Path) -> None:
    result = CliRunner().invoke(
        cli, ["run", "--app-id", "real", "--", *python(APP_ASKING_ITS_SIDECAR)], obj=CliContext()
    )
    assert result.exit_code == 0, result.output
    assert "== APP - real == metadata real True" in result.stdout
    assert NameRegistry(daca_home()).list() == []
