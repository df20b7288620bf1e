"""README.md's "Running on real Dapr", run as written with the built Dapr CLI and daprd.

The ``dapr run`` commands are read out of that section, so the test fails when the README drifts
from what works: ``dapr run -f .`` (the repository's ``dapr.yaml``), and the two one-app commands
as two ``dapr run`` processes; on each, the tutorial's walkthrough over HTTP. They run from a
temporary copy of ``dapr.yaml``, ``dapr-config.yaml`` and ``components/`` (``dapr run -f`` writes
``.dapr/logs`` next to the run file), with ``HOME`` an empty directory: no ``dapr init``, no
``~/.dapr``. Redis is the bundled redis-server on the components' ``localhost:6379``.
"""

from __future__ import annotations

import filecmp
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

from daca.realdapr.build import CLI_VERSION, DAPRD_VERSION, cli_path
from daca.runtime.net import is_listening
from daca.runtime.redis_server import BundledRedis

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Running on real Dapr"
#: What the commands need from the repository, copied unchanged into the working directory.
REPOSITORY_FILES = ("dapr.yaml", "dapr-config.yaml", "components")
REDIS_PORT = 6379  # the components' redisHost
CHAT, MEMORY = "http://127.0.0.1:8010", "http://127.0.0.1:8001"
#: Read at import, before the suite's autouse fixture clears DACA_* (DACA_CACHE moves the cache).
CLI = cli_path()
#: CI (``.ci/run``) sets it: busy ports fail the test instead of skipping it. Read at import,
#: before the suite's autouse fixture clears DACA_*.
REQUIRE_E2E = bool(os.environ.get("DACA_REQUIRE_E2E"))
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0

# --- what the README and the repository's files say ---------------------------------------------


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def readme_dapr_runs() -> list[list[str]]:
    """Every ``dapr run`` command in the section's bash blocks, as argv (comments dropped)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme_section(), flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv[:2] == ["dapr", "run"]:
                commands.append(argv)
    return commands


def run_file_command() -> list[str]:
    [command] = [argv for argv in readme_dapr_runs() if "-f" in argv]
    return command


def one_app_commands() -> list[list[str]]:
    """The one-app commands, in README order (the memory service first)."""
    return [argv for argv in readme_dapr_runs() if "-f" not in argv]


def flags(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a ``dapr run`` command, up to the app command's ``--``."""
    own = argv[2 : argv.index("--")]
    assert len(own) % 2 == 0 and all(name.startswith("--") for name in own[::2]), own
    return dict(zip(own[::2], own[1::2], strict=True))


def run_file() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "dapr.yaml").read_text(encoding="utf-8"))
    return document


def template_addresses(config_file: Path) -> dict[str, str]:
    """App-id -> address of the Configuration's name-resolution template."""
    document = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    resolution = document["spec"]["nameResolution"]
    assert resolution["component"] == "kubernetes"
    template = resolution["configuration"]["template"]
    return dict(re.findall(r'eq \.ID "([^"]+)"\}\}([^{]+)', template))


def fixed_ports() -> dict[str, int]:
    """Every port the commands fix, by what listens there."""
    ports = {"redis": REDIS_PORT}
    for app in run_file()["apps"]:
        ports[app["appID"]] = app["appPort"]
        ports[f"{app['appID']} sidecar"] = app["daprHTTPPort"]
        ports[f"{app['appID']} internal gRPC"] = app["daprInternalGRPCPort"]
    return ports


def test_the_readme_commands_agree_with_the_run_file_and_the_configuration() -> None:
    common = run_file()["common"]
    apps = {app["appID"]: app for app in run_file()["apps"]}
    config_file = (ROOT / common["configFilePath"]).resolve()
    assert not config_file.is_relative_to(ROOT / "components")  # daprd would load it as a resource
    addresses = template_addresses(config_file)
    assert addresses == {
        app_id: f"127.0.0.1:{app['daprInternalGRPCPort']}" for app_id, app in apps.items()
    }
    assert common["placementHostAddress"] == ""
    assert common["schedulerHostAddress"].strip() == "" != common["schedulerHostAddress"]

    assert run_file_command() == ["dapr", "run", "-f", "."]
    commands = one_app_commands()
    assert [flags(argv)["--app-id"] for argv in commands] == list(apps)
    for argv in commands:
        options = flags(argv)
        app = apps[options["--app-id"]]
        assert int(options["--app-port"]) == app["appPort"]
        assert int(options["--dapr-http-port"]) == app["daprHTTPPort"]
        assert int(options["--dapr-internal-grpc-port"]) == app["daprInternalGRPCPort"]
        assert (ROOT / options["--config"]).resolve() == config_file
        assert (ROOT / options["--resources-path"]).resolve() == (ROOT / common["resourcesPath"])
        assert options["--placement-host-address"] == options["--scheduler-host-address"] == ""
        assert argv[argv.index("--") + 1 :][-2:] == ["--port", str(app["appPort"])]

    section = readme_section()
    assert f"daprd {DAPRD_VERSION}" in section and f"dapr/{DAPRD_VERSION}" in section
    assert f"CLI {CLI_VERSION}" in section and f"cli-{CLI_VERSION}" in section


# --- running them -------------------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, _ppid, group = text[text.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def listening_sockets(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on ``port`` (any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def group_sockets(pgid: int) -> set[str]:
    """The inodes of every socket the processes of group ``pgid`` have open."""
    inodes = set()
    for pid in group_members(pgid):
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


@dataclass(frozen=True)
class App:
    """The fixed ports of one app, as dapr.yaml or a one-app command gives them."""

    app_id: str
    app_port: int
    http_port: int
    internal_port: int

    @classmethod
    def from_run_file(cls, app: dict[str, Any]) -> App:
        return cls(app["appID"], app["appPort"], app["daprHTTPPort"], app["daprInternalGRPCPort"])

    @classmethod
    def from_command(cls, argv: list[str]) -> App:
        options = flags(argv)
        return cls(
            options["--app-id"],
            int(options["--app-port"]),
            int(options["--dapr-http-port"]),
            int(options["--dapr-internal-grpc-port"]),
        )


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


@dataclass
class DaprRun:
    """One ``dapr run`` process, leader of its own process group (daprd and the app join it)."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_file: Path
    log: IO[bytes]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_file.read_text(errors="replace").splitlines()
        return f"--- {self.name}: {shlex.join(self.argv)}\n" + "\n".join(text[-lines:])

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"dapr run exited with {code}\n{self.log_tail()}"

    def stop(self) -> int:
        """SIGINT to the group, as Ctrl-C does; the exit code; the group must be gone after."""
        pgid = self.process.pid
        if self.process.poll() is None:
            os.killpg(pgid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT)
            deadline = time.monotonic() + STOP_TIMEOUT
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = group_members(pgid)
        finally:
            self.kill()
        assert not left, f"processes {left} left running after dapr run\n{self.log_tail()}"
        return code

    def kill(self) -> None:
        """SIGKILL whatever is left of the group (after a failure), and close the log."""
        if group_members(self.process.pid):
            logger.warning(
                "killing what is left of %s (process group %d)", self.name, self.process.pid
            )
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()
        self.log.close()


@dataclass
class DaprCli:
    """Runs README ``dapr run`` commands with the built CLI, and stops every one of them."""

    cli: Path
    daprd_version: str
    cwd: Path
    env: dict[str, str]
    logs: Path
    runs: list[DaprRun] = field(default_factory=list)

    def start(self, argv: list[str], name: str) -> DaprRun:
        assert argv[0] == "dapr"
        logger.info("%s: %s (in %s)", name, shlex.join(argv), self.cwd)
        log_file = self.logs / f"{name}.log"
        log = log_file.open("wb")
        process = subprocess.Popen(
            [str(self.cli), *argv[1:]],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        run = DaprRun(name, argv, process, log_file, log)
        self.runs.append(run)
        return run

    def wait_until_serving(self, app: App) -> None:
        """The app answers ``GET /`` and its sidecar reports healthy, while every run runs; then
        the sidecar is this daprd for this app-id, and the app's ports are held by these runs
        (not by another system started on the same fixed ports meanwhile)."""
        root = f"http://127.0.0.1:{app.app_port}/"
        sidecar = f"http://127.0.0.1:{app.http_port}/v1.0"

        def serving() -> bool:
            for run in self.runs:
                run.assert_running()
            with httpx.Client(timeout=2) as client:
                return (
                    client.get(root).status_code == 200
                    and client.get(f"{sidecar}/healthz").status_code == 204
                )

        try:
            eventually(serving, f"{root} and {sidecar}/healthz", timeout=START_TIMEOUT)
        except AssertionError as exc:
            tails = "\n".join(run.log_tail() for run in self.runs)
            raise AssertionError(f"{exc}\n{tails}") from None
        metadata = httpx.get(f"{sidecar}/metadata").json()
        assert (metadata["id"], metadata["runtimeVersion"]) == (app.app_id, self.daprd_version)
        ours = set().union(*(group_sockets(run.process.pid) for run in self.runs))
        for port in (app.app_port, app.http_port, app.internal_port):
            held = listening_sockets(port)
            assert held and held <= ours, f"port {port} of {app.app_id} is not held by dapr run"

    def stop_all(self) -> list[int]:
        """Stop the runs, last started first; their exit codes in start order."""
        codes = [run.stop() for run in reversed(self.runs)]
        self.runs.clear()
        return codes[::-1]

    def kill_all(self) -> None:
        for run in self.runs:
            run.kill()
        self.runs.clear()


@pytest.fixture
def cli() -> Path:
    if not CLI.is_file():
        pytest.skip(f"the Dapr CLI {CLI_VERSION} is not built at {CLI} (`daca dapr install`)")
    return CLI


@pytest.fixture
def runtime_path(daprd_binary: Path, tmp_path: Path) -> Path:
    """A DAPR_RUNTIME_PATH for the suite's daprd: its own when it is laid out as one."""
    if daprd_binary.parent.name == "bin" and daprd_binary.parents[1].name == ".dapr":
        return daprd_binary.parents[2]
    runtime = tmp_path / "dapr-runtime"
    (runtime / ".dapr" / "bin").mkdir(parents=True)
    (runtime / ".dapr" / "bin" / "daprd").symlink_to(daprd_binary)
    return runtime


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[BundledRedis]:
    busy = [name for name, port in fixed_ports().items() if is_listening("127.0.0.1", port)]
    if busy:
        message = f"ports of {busy} are in use (is the system already running?)"
        if REQUIRE_E2E:
            pytest.fail(message)
        pytest.skip(message)
    server = BundledRedis(REDIS_PORT, tmp_path / "redis", persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A copy of the files the commands use; they must still equal the repository's after."""
    directory = tmp_path / "repo"
    directory.mkdir()
    for name in REPOSITORY_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name)
        else:
            shutil.copy2(source, directory / name)
    yield directory
    for name in REPOSITORY_FILES:
        if (ROOT / name).is_dir():
            comparison = filecmp.dircmp(ROOT / name, directory / name)
            assert not (comparison.diff_files or comparison.left_only or comparison.right_only)
        else:
            assert filecmp.cmp(ROOT / name, directory / name, shallow=False)


@pytest.fixture
def dapr(
    cli: Path, runtime_path: Path, redis: BundledRedis, workdir: Path, tmp_path: Path
) -> Iterator[DaprCli]:
    home = tmp_path / "home"
    home.mkdir()
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAPR_RUNTIME_PATH": str(runtime_path),
        "HOME": str(home),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    version = subprocess.run(
        [str(runtime_path / ".dapr" / "bin" / "daprd"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    runner = DaprCli(cli, version, workdir, env, logs)
    try:
        yield runner
    finally:
        runner.kill_all()
    assert not (home / ".dapr").exists(), "the CLI wrote ~/.dapr"

    def still_listened() -> list[str]:
        ports = fixed_ports().items()
        return [name for name, port in ports if name != "redis" and is_listening("127.0.0.1", port)]

    # A stopped process lets go of its port when it has exited, a moment after the CLI
    # reports it stopped: poll, bounded.
    deadline = time.monotonic() + 15
    while (busy := still_listened()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not busy, f"{busy} still listened on 15 s after the runs stopped"


def chat(text: str, session: str) -> dict[str, Any]:
    body = {"user_id": "junaid", "text": text, "metadata": {"session_id": session}}
    answer = httpx.post(f"{CHAT}/chat/", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    reply: dict[str, Any] = answer.json()
    return reply


def walkthrough() -> None:
    """The tutorial's session (README, "The tutorial's session, with curl")."""
    init = httpx.post(
        f"{MEMORY}/memories/junaid/initialize",
        json={
            "name": "Junaid",
            "preferred_style": "casual",
            "user_summary": "Junaid is a new user.",
        },
    )
    assert init.status_code == 200, init.text
    chat("I am planning to go to SF tomorrow.", "s1")
    chat("What time is it?", "s1")

    def full_history() -> list[dict[str, Any]] | None:
        conversation = httpx.get(f"{MEMORY}/conversations/s1").json()
        history: list[dict[str, Any]] = conversation["history"]
        return history if conversation["total_entries"] >= 4 else None

    history = eventually(full_history, "the four turns of s1 in the history")
    assert history[0]["content"] == "I am planning to go to SF tomorrow."
    eventually(
        lambda: "SF" in (httpx.get(f"{MEMORY}/memories/junaid").json()["user_summary"] or ""),
        "SF in the summary",
    )
    reply = chat("Where was I planning to go tomorrow?", "s2")
    assert "SF" in reply["reply"]


@pytest.mark.daprd
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dapr_run_f_serves_the_walkthrough(dapr: DaprCli) -> None:
    dapr.start(run_file_command(), "dapr-run-f")
    for app in run_file()["apps"]:
        dapr.wait_until_serving(App.from_run_file(app))
    walkthrough()
    assert dapr.stop_all() == [0]


@pytest.mark.daprd
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_one_app_commands_serve_the_walkthrough(dapr: DaprCli) -> None:
    for argv in one_app_commands():
        app = App.from_command(argv)
        dapr.start(argv, app.app_id)
        dapr.wait_until_serving(app)
    walkthrough()
    assert dapr.stop_all() == [0, 0]
