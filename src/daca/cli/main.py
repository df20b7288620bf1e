"""The ``daca`` command line, modelled on the Dapr CLI: ``sidecar``, ``run``, ``list``, ``up``,
and ``dapr install`` (real daprd and the Dapr CLI, built from source).

Thin by design: commands turn flags into ``SidecarConfig``/``AppLaunch`` values and hand them to
``daca.runtime.supervisor.Supervisor``. Tests pass a ``CliContext`` as click's ``obj`` to supply a
sidecar factory (the in-process seam).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from daca.cli.output import ClickConsole, records_json, records_table, up_summary
from daca.logsetup import LOG_LEVELS, configure_logging
from daca.realdapr.build import CLI_VERSION, DAPRD_VERSION, DaprBuilder, DaprBuildError
from daca.runtime.applaunch import AppLaunch
from daca.runtime.config import SidecarConfig, daca_home
from daca.runtime.nameregistry import NameRegistry
from daca.runtime.quantity import QuantityError, parse_byte_quantity
from daca.runtime.runfile import DEFAULT_FILE_NAME, RunFile, RunFileError, load_run_file
from daca.runtime.supervisor import SidecarFactory, Supervisor

F = TypeVar("F", bound=Callable[..., Any])

LOG_LEVEL_CHOICE = click.Choice(sorted(LOG_LEVELS), case_sensitive=False)


@dataclass
class CliContext:
    """What commands share: the sidecar factory (``None``: the real ``Sidecar``)."""

    sidecar_factory: SidecarFactory | None = None


def default_resources_paths(cwd: Path | None = None, home: Path | None = None) -> tuple[Path, ...]:
    """``./components`` if it exists, else ``~/.dapr/components`` if it exists, else none."""
    candidates = ((cwd or Path.cwd()) / "components", (home or Path.home()) / ".dapr/components")
    return next(((path.absolute(),) for path in candidates if path.is_dir()), ())


def find_run_file(start: Path) -> Path:
    """The nearest ``dapr.yaml`` in ``start`` or one of its parents."""
    for directory in (start, *start.parents):
        if (directory / DEFAULT_FILE_NAME).is_file():
            return directory / DEFAULT_FILE_NAME
    raise click.ClickException(
        f"no {DEFAULT_FILE_NAME} in {start} or any parent directory; use --run-file"
    )


def run_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop where it is installed (not on Windows), else on asyncio's loop.

    uvloop doubles the runtime's deliveries per second (``bench/runtime_bench.py``).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _supervise(apps: Sequence[AppLaunch]) -> NoReturn:
    """Run ``apps`` under a supervisor and exit with its code."""
    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext) or CliContext()
    supervisor = Supervisor(sidecar_factory=obj.sidecar_factory, console=ClickConsole())
    ctx.exit(run_event_loop(supervisor.run(apps)))


def _load(path: Path) -> RunFile:
    try:
        return load_run_file(path)
    except RunFileError as exc:
        raise click.ClickException(str(exc)) from exc


def _log_level_option(function: F) -> F:
    """A per-command ``--log-level`` that overrides the group's."""

    def apply(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            configure_logging(value)

    return click.option(
        "--log-level", type=LOG_LEVEL_CHOICE, callback=apply, expose_value=False, help="Log level."
    )(function)


def _sidecar_options(default_http_port: int | None) -> Callable[[F], F]:
    """The daprd-like flags ``sidecar`` and ``run`` share."""
    http_help = "Sidecar HTTP port" + (
        f" (default {default_http_port})." if default_http_port else " (default: a free port)."
    )
    options = [
        click.option("--app-id", "-a", required=default_http_port is not None, help="App ID."),
        click.option("--app-port", "-p", type=click.IntRange(1, 65535), help="The app's port."),
        click.option(
            "--dapr-http-port",
            "-H",
            type=click.IntRange(0, 65535),
            default=default_http_port,
            help=http_help,
        ),
        click.option(
            "--resources-path",
            "resources_paths",
            multiple=True,
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Component/subscription YAML directory (repeatable; default ./components, "
            "else ~/.dapr/components, if present).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Dapr Configuration YAML.",
        ),
        click.option("--app-channel-address", default="127.0.0.1", show_default=True),
        click.option(
            "--metrics-port",
            "-M",
            type=click.IntRange(0, 65535),
            default=None,
            help="Serve daprd's Prometheus metrics on this port (default: not served).",
        ),
        click.option(
            "--max-body-size",
            default="4Mi",
            metavar="QUANTITY",
            callback=_body_size,
            show_default=True,
            help="Largest request body the sidecar reads, as a quantity (4Mi, 512Ki, 1e6).",
        ),
        _log_level_option,
    ]

    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _body_size(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    """``--max-body-size``: a quantity as daprd reads it, in bytes."""
    try:
        return parse_byte_quantity(value)
    except QuantityError as exc:
        raise click.BadParameter(str(exc)) from None


def _sidecar_config(
    app_id: str,
    app_port: int | None,
    dapr_http_port: int | None,
    resources_paths: tuple[Path, ...],
    config_file: Path | None,
    app_channel_address: str,
    max_body_size: int,
    metrics_port: int | None,
) -> SidecarConfig:
    return SidecarConfig.from_env(
        app_id=app_id,
        app_port=app_port,
        http_port=dapr_http_port or 0,
        resources_paths=tuple(p.absolute() for p in resources_paths) or default_resources_paths(),
        config_file=config_file.absolute() if config_file else None,
        app_channel_address=app_channel_address,
        max_body_size=max_body_size,
        metrics_port=metrics_port,
    )


@click.group()
@click.option("--log-level", type=LOG_LEVEL_CHOICE, default="info", show_default=True)
@click.pass_context
def cli(ctx: click.Context, log_level: str) -> None:
    """daca: a Dapr-compatible local runtime and its CLI."""
    ctx.ensure_object(CliContext)
    configure_logging(log_level)


@cli.command()
@_sidecar_options(default_http_port=3500)
def sidecar(**flags: Any) -> None:
    """Run one sidecar (like daprd) until SIGINT/SIGTERM."""
    _supervise([AppLaunch(_sidecar_config(**flags))])


@cli.command(context_settings={"allow_interspersed_args": False})
@_sidecar_options(default_http_port=None)
@click.option("--dapr-grpc-port", "-G", type=click.IntRange(1, 65535), help="DAPR_GRPC_PORT.")
@click.option(
    "--run-file", "-f", type=click.Path(path_type=Path), help="A run file, or a directory with one."
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(
    dapr_grpc_port: int | None,
    run_file: Path | None,
    command: tuple[str, ...],
    app_id: str | None,
    **flags: Any,
) -> None:
    """Run a sidecar and the app COMMAND (after --), or every app of a run file (-f)."""
    if run_file is None:
        config = _sidecar_config(app_id=app_id or f"daca-app-{secrets.token_hex(3)}", **flags)
        _supervise([AppLaunch(config, command=command or None, grpc_port=dapr_grpc_port)])
    if command:
        raise click.UsageError("give either --run-file or a command, not both")
    _supervise([AppLaunch.from_spec(app) for app in _load(run_file).apps])


@cli.command(name="list")
@click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def list_apps(output: str) -> None:
    """List the running apps (from the local name registry)."""
    records = NameRegistry(daca_home()).list()
    if output == "json":
        click.echo(records_json(records))
    elif records:
        click.echo(records_table(records))
    else:
        click.echo("No daca apps are running.")


@cli.command()
@click.option(
    "--run-file",
    "-f",
    type=click.Path(path_type=Path),
    help=f"Default: the nearest {DEFAULT_FILE_NAME} here or in a parent directory.",
)
@_log_level_option
def up(run_file: Path | None) -> None:
    """Run this project's system: every app of its dapr.yaml."""
    loaded = _load(run_file if run_file is not None else find_run_file(Path.cwd()))
    for line in up_summary(loaded, llm_provider()):
        click.echo(line)
    _supervise([AppLaunch.from_spec(app) for app in loaded.apps])


@cli.command()
@click.option("--url", default="http://127.0.0.1:8010", show_default=True, help="Chat service.")
@click.option("--user", required=True, help="Your user id.")
@click.option("--session", default=None, help="Continue this session (default: a new one).")
@click.option("--token", envvar="DACA_TOKEN", default=None, help="Bearer token (production).")
def chat(url: str, user: str, session: str | None, token: str | None) -> None:
    """Chat with the agent in the terminal, replies streamed; /new, /memory, /forget."""
    from daca.cli.chat import chat_command

    raise SystemExit(chat_command(url, user, session, token))


@cli.group()
def dapr() -> None:
    """Real Dapr: daprd and the Dapr CLI, built from their Go modules into a cache."""


@dapr.command()
@click.option("--version", "daprd_version", default=DAPRD_VERSION, show_default=True)
@click.option("--cli-version", default=CLI_VERSION, show_default=True)
@click.option("--no-cli", is_flag=True, help="Build daprd only.")
def install(daprd_version: str, cli_version: str, no_cli: bool) -> None:
    """Build daprd (and the Dapr CLI) once per version; print where they are.

    Needs Go >= 1.26 and the Go module proxy. A cold build takes several minutes; later runs
    reuse the cached binaries at once.
    """
    try:
        built = DaprBuilder().provide(daprd_version, None if no_cli else cli_version)
    except DaprBuildError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"daprd {built.daprd_version}: {built.daprd}")
    if built.cli is not None:
        click.echo(f"dapr CLI {built.cli_version}: {built.cli}")
        click.echo(f"  use it with DAPR_RUNTIME_PATH={built.runtime_path}")


def llm_provider() -> str | None:
    """The LLM provider the services will use, if the LLM package is installed."""
    try:
        from daca.llm.settings import LLMSettings
    except ImportError:
        return None
    try:
        return LLMSettings().provider
    except ValidationError as exc:  # the messages only: input values may hold keys
        return "invalid settings: " + "; ".join(error["msg"] for error in exc.errors())


def main() -> None:
    """The ``daca`` console script."""
    cli(prog_name="daca")
