"""Providing daprd and the Dapr CLI: reuse of the cache and the errors a user sees.

The Go module proxy is faked over HTTP (a loopback server refusing every module, as the real
proxy refuses the versions it does not serve); Go itself is the real toolchain where installed.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from daca.cli.main import cli
from daca.realdapr.build import DaprBuilder, DaprBuildError, cli_path, daprd_path


def refuse(command: Sequence[str], env: Mapping[str, str], cwd: Path | None) -> None:
    raise AssertionError(f"nothing should run: {command}")


def test_cached_binaries_are_reused_without_go(tmp_path: Path) -> None:
    for path in (daprd_path("1.2.3", tmp_path), cli_path("4.5.6", tmp_path)):
        path.parent.mkdir(parents=True)
        path.write_text("#!/bin/sh\n")
    builder = DaprBuilder(root=tmp_path, environ={"PATH": ""}, runner=refuse)  # type: ignore[arg-type]
    built = builder.provide("1.2.3", "4.5.6")
    assert built.daprd == daprd_path("1.2.3", tmp_path)
    assert built.cli == cli_path("4.5.6", tmp_path)
    assert built.runtime_path == tmp_path / "dapr" / "1.2.3"  # the CLI's DAPR_RUNTIME_PATH


def test_missing_go_is_a_clear_error(tmp_path: Path) -> None:
    builder = DaprBuilder(root=tmp_path, environ={"PATH": str(tmp_path)})
    with pytest.raises(DaprBuildError, match=r"Go is not installed \(no `go` on PATH\)"):
        builder.provide("1.2.3", None)


def test_cli_reports_missing_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("DACA_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["dapr", "install", "--no-cli"])
    assert result.exit_code == 1
    assert "Go is not installed" in result.output


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"This module version is not available."
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_proxy() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_a_refused_module_names_the_command_and_the_proxy_error(
    tmp_path: Path, refusing_proxy: str
) -> None:
    environ = {
        "PATH": str(Path(shutil.which("go") or "").parent),
        "HOME": str(tmp_path),
        "GOPROXY": refusing_proxy,
        "GOSUMDB": "off",  # no checksum database lookups off this machine
        "GOTOOLCHAIN": "local",
        "GOMODCACHE": str(tmp_path / "modcache"),
        "GOCACHE": str(tmp_path / "gocache"),
        "GOPATH": str(tmp_path / "gopath"),
    }
    builder = DaprBuilder(root=tmp_path / "cache", environ=environ)
    with pytest.raises(DaprBuildError) as raised:
        builder.provide("9.9.9", None)
    message = str(raised.value)
    assert "the Go module proxy did not provide github.com/dapr/dapr@v9.9.9" in message
    assert "go mod download -json github.com/dapr/dapr@v9.9.9" in message
    assert "403 Forbidden" in message
    assert not daprd_path("9.9.9", tmp_path / "cache").exists()
    subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], check=False)  # go's read-only cache
