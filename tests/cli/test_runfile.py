"""Parsing Dapr's multi-app run file: fields, path rules, the common merge and errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daca.runtime.applaunch import AppLaunch
from daca.runtime.runfile import RunFileError, load_run_file


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with two app directories and shared resources; HOME has no ~/.dapr."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("orders", "checkout", "resources", "orders/components"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.yaml").write_text("kind: Configuration\n")
    return tmp_path


def test_full_example_with_path_rules_and_common_merge(project: Path) -> None:
    write(
        project / "dapr.yaml",
        """
        version: 1
        common:
          resourcesPath: ./resources
          configFilePath: config.yaml
          env: {DEBUG: true, SHARED: common, LEVEL: 1}
          appLogDestination: console
        apps:
          - appID: orders-api
            appDirPath: ./orders/
            appPort: 8001
            daprHTTPPort: 3501
            daprGRPCPort: 50002
            resourcesPaths: [components]
            command: ["uvicorn", "main:app", "--port", "8001"]
            env: {SHARED: app}
            daprdLogDestination: fileAndConsole
          - appDirPath: checkout
            command: ["python", "app.py"]
        """,
    )
    orders, checkout = load_run_file(project).apps

    assert orders.app_id == "orders-api"
    assert orders.app_dir == project / "orders"
    assert (orders.app_port, orders.dapr_http_port, orders.dapr_grpc_port) == (8001, 3501, 50002)
    assert orders.command == ["uvicorn", "main:app", "--port", "8001"]
    assert orders.resources_paths == [project / "orders" / "components"]  # relative to appDirPath
    assert orders.env == {"DEBUG": "true", "SHARED": "app", "LEVEL": "1"}
    assert orders.config_file == project / "config.yaml"  # common's, relative to the run file
    assert (orders.app_log_destination, orders.daprd_log_destination) == (
        "console",
        "fileAndConsole",
    )

    assert checkout.app_id == "checkout"  # derived from appDirPath
    assert checkout.resources_paths == [project / "resources"]  # common's singular form
    assert checkout.env == {"DEBUG": "true", "SHARED": "common", "LEVEL": "1"}
    assert (checkout.app_port, checkout.dapr_http_port) == (None, None)
    assert checkout.daprd_log_destination == "file"
    assert checkout.logs_dir == project / "checkout" / ".dapr" / "logs"


def test_a_file_path_and_a_directory_are_both_accepted(project: Path) -> None:
    run_file = write(
        project / "other.yaml",
        "version: 1\napps:\n  - appDirPath: orders\n    command: [x]\n",
    )
    assert load_run_file(run_file).path == run_file
    assert load_run_file(run_file).apps[0].app_id == "orders"


def test_app_dot_dapr_directory_beats_common(project: Path) -> None:
    local = project / "orders" / ".dapr" / "resources"
    local.mkdir(parents=True)
    write(project / "orders" / ".dapr" / "config.yaml", "kind: Configuration\n")
    write(
        project / "dapr.yaml",
        """
        version: 1
        common: {resourcesPaths: [resources], configFilePath: config.yaml}
        apps: [{appDirPath: orders, command: [x]}]
        """,
    )
    (app,) = load_run_file(project).apps
    assert app.resources_paths == [local]
    assert app.config_file == project / "orders" / ".dapr" / "config.yaml"


def test_home_components_are_the_last_resort(project: Path) -> None:
    write(project / "dapr.yaml", "version: 1\napps: [{appDirPath: orders, command: [x]}]\n")
    assert load_run_file(project).apps[0].resources_paths == []
    home_components = project / "home" / ".dapr" / "components"
    home_components.mkdir(parents=True)
    assert load_run_file(project).apps[0].resources_paths == [home_components]


def test_max_body_size_is_a_quantity_from_the_app_or_common(project: Path) -> None:
    write(
        project / "dapr.yaml",
        """
        version: 1
        common: {maxBodySize: 16Mi}
        apps:
          - {appDirPath: orders, maxBodySize: 512Ki}
          - {appDirPath: checkout}
        """,
    )
    orders, checkout = load_run_file(project).apps
    assert (orders.max_body_size, checkout.max_body_size) == (512 << 10, 16 << 20)
    write(project / "dapr.yaml", "version: 1\napps: [{appDirPath: orders, maxBodySize: 1000}]\n")
    assert load_run_file(project).apps[0].max_body_size == 1000
    write(project / "dapr.yaml", "version: 1\napps: [{appDirPath: orders}]\n")
    assert load_run_file(project).apps[0].max_body_size == 4 << 20  # daprd's default


def test_metrics_port_is_read_per_app(project: Path) -> None:
    write(
        project / "dapr.yaml",
        "version: 1\napps: [{appDirPath: orders, metricsPort: 9091}, {appDirPath: checkout}]\n",
    )
    orders, checkout = load_run_file(project).apps
    assert (orders.metrics_port, checkout.metrics_port) == (9091, None)
    assert AppLaunch.from_spec(orders).config.metrics_port == 9091


def test_an_app_without_command_runs_its_sidecar_only(project: Path) -> None:
    write(project / "dapr.yaml", "version: 1\napps: [{appDirPath: orders}]\n")
    assert load_run_file(project).apps[0].command == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("version: 2\napps: [{appDirPath: orders}]", "field 'version' must be 1, got 2"),
        ("apps: [{appDirPath: orders}]", "field 'version' is required"),
        ("version: 1\napps: []", "field 'apps' must not be empty"),
        ("version: 1\napps: [{appID: a, command: [x]}]", "app 'a': field 'appDirPath' is required"),
        ("version: 1\napps: [{command: [x]}]", "apps[0]: field 'appDirPath' is required"),
        ("version: 1\napps: [{appDirPath: nowhere}]", "field 'appDirPath' names "),
        ("version: 1\napps: [{appDirPath: orders, command: x}]", "field 'command' must be a list"),
        ("version: 1\napps: [{appDirPath: orders, command: []}]", "'command' must not be empty"),
        (
            "version: 1\napps: [{appDirPath: orders, command: [' ', x]}]",
            "app 'orders': field 'command' starts with an empty program name",
        ),
        (
            "version: 1\napps: [{appDirPath: orders, appPort: abc}]",
            "field 'appPort' must be a port number, got 'abc'",
        ),
        (
            "version: 1\napps: [{appDirPath: orders, resourcesPaths: [components, missing]}]",
            "app 'orders': field 'resourcesPaths[1]' names ",
        ),
        (
            "version: 1\ncommon: {env: [A]}\napps: [{appDirPath: orders}]",
            "dapr.yaml: field 'common.env' must be a mapping, got ['A']",
        ),
        (
            "version: 1\napps: [{appDirPath: orders, appLogDestination: cloud}]",
            "field 'appLogDestination' must be 'file', 'console' or 'fileAndConsole', got 'cloud'",
        ),
        (
            "version: 1\napps: [{appDirPath: orders}, {appID: orders, appDirPath: checkout}]",
            "app 'orders': field 'appID' is used by more than one app",
        ),
        ("version: 1\napps: [{appDirPath: orders\n", "invalid YAML"),
        ("- 1\n- 2\n", "expected a YAML mapping"),
        (
            "version: 1\napps: [{appDirPath: orders, maxBodySize: 1.5Ki}]",
            "field 'maxBodySize' is not a byte size: cannot get bytes from resource quantity value",
        ),
    ],
)
def test_errors_name_the_file_and_the_app(project: Path, document: str, message: str) -> None:
    run_file = write(project / "dapr.yaml", document)
    with pytest.raises(RunFileError) as caught:
        load_run_file(run_file)
    assert str(run_file) in str(caught.value)
    assert message in str(caught.value)


def test_a_missing_file_is_a_run_file_error(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="cannot read"):
        load_run_file(tmp_path)
    assert issubclass(RunFileError, ValueError)


def test_home_directory_is_expanded(project: Path) -> None:
    shared = project / "home" / "shared-components"
    shared.mkdir(parents=True)
    write(
        project / "dapr.yaml",
        """
        version: 1
        common: {resourcesPaths: ["~/shared-components"]}
        apps: [{appDirPath: orders, command: [x]}]
        """,
    )
    assert load_run_file(project).apps[0].resources_paths == [shared]


def test_a_null_app_value_inherits_common_as_the_cli_merges_zero_values(project: Path) -> None:
    write(
        project / "dapr.yaml",
        """
        version: 1
        common: {maxBodySize: 1Mi, appLogDestination: console}
        apps: [{appDirPath: orders, maxBodySize: null, appLogDestination: " "}]
        """,
    )
    (app,) = load_run_file(project).apps
    assert (app.max_body_size, app.app_log_destination) == (1 << 20, "console")


def test_a_bad_common_value_is_an_error_even_where_every_app_overrides_it(project: Path) -> None:
    run_file = write(
        project / "dapr.yaml",
        "version: 1\ncommon: {maxBodySize: 1.5Ki}\napps: [{appDirPath: orders, maxBodySize: 1M}]\n",
    )
    with pytest.raises(RunFileError) as caught:
        load_run_file(run_file)
    assert str(caught.value) == (
        f"run file {run_file}: field 'common.maxBodySize' is not a byte size: "
        "cannot get bytes from resource quantity value '1.5Ki'"
    )
