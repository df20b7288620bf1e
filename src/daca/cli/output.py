"""What the CLI writes to the terminal: app output, the ``list`` table and the ``up`` summary
(logging is set up by ``daca.logsetup``)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict

import click

from daca.runtime.nameregistry import AppRecord
from daca.runtime.runfile import RunFile


class ClickConsole:
    """The supervisor's console: app lines prefixed like the Dapr CLI's, errors to stderr."""

    def app_output(self, app_id: str, line: str) -> None:
        click.echo(f"== APP - {app_id} == {line}")

    def status(self, message: str) -> None:
        click.echo(f"== DACA == {message}")

    def error(self, message: str) -> None:
        click.echo(f"Error: {message}", err=True)


LIST_COLUMNS = ("APP ID", "HTTP PORT", "APP PORT", "PID", "AGE", "COMMAND")


def format_age(seconds: float) -> str:
    """``42s``, ``5m``, ``3h`` or ``2d``, as ``dapr list`` shows ages."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def records_table(records: Sequence[AppRecord], now: float | None = None) -> str:
    """The ``daca list`` table, columns padded to their widest cell."""
    current = time.time() if now is None else now
    rows = [LIST_COLUMNS] + [
        (
            record.app_id,
            str(record.http_port),
            "" if record.app_port is None else str(record.app_port),
            str(record.pid),
            format_age(current - record.started_at),
            record.app_command,
        )
        for record in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


#: Record fields never printed: the secret sidecars authenticate each other with.
SECRET_FIELDS = frozenset({"peer_token"})


def records_json(records: Sequence[AppRecord]) -> str:
    """The records as JSON, without their secrets."""
    public = [
        {key: value for key, value in asdict(record).items() if key not in SECRET_FIELDS}
        for record in records
    ]
    return json.dumps(public, indent=2)


def up_summary(run_file: RunFile, llm_provider: str | None) -> list[str]:
    """Where to send requests once ``daca up`` has started the run file's apps."""
    lines = [f"Starting {len(run_file.apps)} apps from {run_file.path}"]
    for app in run_file.apps:
        sidecar = (
            f"http://127.0.0.1:{app.dapr_http_port}"
            if app.dapr_http_port
            else "a free port (see `daca list`)"
        )
        url = f"http://127.0.0.1:{app.app_port}" if app.app_port else "no port"
        lines.append(f"  {app.app_id}: {url}  (sidecar: {sidecar})")
        if "chat" in app.app_id and app.app_port:
            lines.append(f"    chat with it: {url}/ui in a browser, or POST {url}/chat/")
    if llm_provider is not None:
        lines.append(f"LLM provider: {llm_provider}")
    return lines
