"""Provide real Dapr: ``daprd`` built from the ``github.com/dapr/dapr`` module, and the Dapr CLI.

Neither is downloaded as a binary. ``daprd``'s ``go.mod`` has ``replace`` directives, so
``go install github.com/dapr/dapr/cmd/daprd@vX`` refuses; instead the module source is fetched
from the Go module proxy (``go mod download -json``), copied somewhere writable and built there
with the ``stablecomponents`` tag (without a components tag daprd panics at start-up) and the
version stamped in as Dapr's own Makefile does. The Dapr CLI has no ``replace`` directives and
builds with ``go install``.

Binaries are cached by version outside the repository (see :func:`cache_root`) and reused::

    <cache>/dapr/<version>/.dapr/bin/daprd     DAPR_RUNTIME_PATH=<cache>/dapr/<version> for `dapr`
    <cache>/dapr/cli-<cli version>/dapr

A cold build downloads a few hundred modules and compiles them; later calls return at once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The newest daprd release whose modules the Go module proxy serves here (v1.18.3 needs
#: github.com/dapr/durabletask-go v0.12.4 and a pulsar-client-go fork that it refuses).
DAPRD_VERSION = "1.18.2"
#: The newest Dapr CLI release the proxy serves with a verifiable checksum (1.17.x and 1.18.0
#: are refused or missing from the checksum database).
CLI_VERSION = "1.16.5"

DAPR_MODULE = "github.com/dapr/dapr"
CLI_MODULE = "github.com/dapr/cli"
#: Dependency versions raised before building, per CLI version: the CLI 1.16.5 requires
#: components-contrib v1.16.3, which the proxy refuses; v1.16.5 (a later patch release of the
#: same line) is served, so it is required instead (``go mod edit -require``, then ``-mod=mod``).
CLI_REQUIREMENTS: Mapping[str, tuple[str, ...]] = {
    "1.16.5": ("github.com/dapr/components-contrib@v1.16.5",),
}
BUILD_TAGS = "stablecomponents"

Runner = Callable[
    [Sequence[str], Mapping[str, str], Path | None], "subprocess.CompletedProcess[str]"
]


class DaprBuildError(Exception):
    """daprd or the Dapr CLI could not be provided; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class DaprBinaries:
    """Where the built binaries are."""

    daprd: Path
    cli: Path | None
    daprd_version: str
    cli_version: str | None

    @property
    def runtime_path(self) -> Path:
        """The directory to give the CLI as ``DAPR_RUNTIME_PATH`` (it holds ``.dapr/bin``)."""
        return self.daprd.parents[2]


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$DACA_CACHE``, else ``$XDG_CACHE_HOME/daca``, else ``~/.cache/daca``."""
    env = os.environ if environ is None else environ
    if env.get("DACA_CACHE"):
        return Path(env["DACA_CACHE"])
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "daca"


def daprd_path(version: str = DAPRD_VERSION, root: Path | None = None) -> Path:
    """Where the daprd binary of ``version`` lives in the cache (built or not)."""
    return (root or cache_root()) / "dapr" / version / ".dapr" / "bin" / "daprd"


def cli_path(version: str = CLI_VERSION, root: Path | None = None) -> Path:
    """Where the Dapr CLI binary of ``version`` lives in the cache (built or not)."""
    return (root or cache_root()) / "dapr" / f"cli-{version}" / "dapr"


def _run(
    command: Sequence[str], env: Mapping[str, str], cwd: Path | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), env=dict(env), cwd=cwd, capture_output=True, text=True, check=False
    )


class DaprBuilder:
    """Builds (once) and finds daprd and the Dapr CLI in the cache."""

    def __init__(
        self,
        *,
        root: Path | None = None,
        environ: Mapping[str, str] | None = None,
        runner: Runner = _run,
    ) -> None:
        self._env = dict(os.environ if environ is None else environ)
        self._root = root or cache_root(self._env)
        self._runner = runner

    def provide(
        self, version: str = DAPRD_VERSION, cli_version: str | None = CLI_VERSION
    ) -> DaprBinaries:
        """daprd (and the CLI unless ``cli_version`` is None), built if not yet cached."""
        daprd = self.daprd(version)
        cli = self.cli(cli_version) if cli_version else None
        return DaprBinaries(daprd, cli, version, cli_version)

    def daprd(self, version: str = DAPRD_VERSION) -> Path:
        target = daprd_path(version, self._root)
        if target.is_file():
            return target
        started = time.monotonic()
        logger.info("building daprd %s from %s (once; cached in %s)", version, DAPR_MODULE, target)
        stamp = f"{DAPR_MODULE}/pkg/buildinfo"
        ldflags = f"-X {stamp}.version={version} -s -w"
        self._build_module(f"{DAPR_MODULE}@v{version}", "./cmd/daprd", ldflags, target)
        logger.info("built daprd %s in %.0f s: %s", version, time.monotonic() - started, target)
        return target

    def cli(self, version: str = CLI_VERSION) -> Path:
        target = cli_path(version, self._root)
        if target.is_file():
            return target
        logger.info("building the Dapr CLI %s from %s (once)", version, CLI_MODULE)
        # Built from a copy like daprd, not `go install mod@v`: that asks the proxy for the
        # module's version list (deprecation check), which the proxy may refuse.
        ldflags = f"-X main.version={version} -s -w"
        requires = CLI_REQUIREMENTS.get(version, ())
        self._build_module(f"{CLI_MODULE}@v{version}", ".", ldflags, target, requires)
        return target

    def _build_module(
        self,
        module: str,
        package: str,
        ldflags: str,
        target: Path,
        requires: Sequence[str] = (),
    ) -> None:
        """Download ``module``, build ``package`` of a writable copy into ``target``.

        ``requires`` (``path@version``) are raised in the copy's go.mod first.
        """
        go = self._go()
        source = self._download(go, module)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self._workdir()))
        try:
            tree = work / "src"
            shutil.copytree(source, tree)
            _make_writable(tree)
            env = {**self._env, "CGO_ENABLED": "0"}
            build = [go, "build", "-trimpath", "-tags", BUILD_TAGS, f"-ldflags={ldflags}"]
            for requirement in requires:
                edit = [go, "mod", "edit", f"-require={requirement}"]
                self._check(edit, env, tree, f"raising {requirement} for {module}")
            if requires:
                build.append("-mod=mod")
            partial = work / target.name
            build += ["-o", str(partial), package]
            self._check(build, env, tree, f"go build of {module}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _workdir(self) -> Path:
        path = self._root / "dapr" / "build"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _go(self) -> str:
        go = shutil.which("go", path=self._env.get("PATH"))
        if go is None:
            raise DaprBuildError(
                "Go is not installed (no `go` on PATH): daprd and the Dapr CLI are built from "
                "their Go modules. Install Go >= 1.26 and run this again."
            )
        return go

    def _download(self, go: str, module: str) -> Path:
        """``go mod download -json module``: its directory in the (read-only) module cache."""
        command = [go, "mod", "download", "-json", module]
        result = self._runner(command, self._env, self._workdir())
        try:
            info: dict[str, Any] = json.loads(result.stdout)
        except ValueError:
            info = {"Error": (result.stderr or result.stdout).strip()}
        if result.returncode != 0 or "Error" in info or "Dir" not in info:
            raise DaprBuildError(
                f"the Go module proxy did not provide {module}.\n"
                f"  command: {' '.join(command)}\n  error: {info.get('Error', result.stderr)}"
            )
        return Path(info["Dir"])

    def _check(
        self, command: Sequence[str], env: Mapping[str, str], cwd: Path | None, what: str
    ) -> None:
        result = self._runner(command, env, cwd)
        if result.returncode == 0:
            return
        problems = [
            line for line in result.stderr.splitlines() if not line.startswith("go: downloading")
        ]
        detail = "\n    ".join(problems[-15:]) or "(no output)"
        raise DaprBuildError(
            f"{what} failed (exit {result.returncode}).\n"
            f"  command: {' '.join(command)} (in {cwd or '.'})\n  output:\n    {detail}"
        )


def _make_writable(tree: Path) -> None:
    """The module cache is read-only; the copy must not be (go build writes nothing there, but
    removing the copy afterwards needs write permission)."""
    for directory, _dirs, files in os.walk(tree):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory, name)
            path.chmod(path.stat().st_mode | 0o200)
