"""Loading Dapr resource YAML from resources directories."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from daca.runtime.cel import UnsupportedExpressionError, compile_match
from daca.runtime.errors import ComponentError
from daca.runtime.loader import load_configuration, load_resources
from daca.runtime.resources import BulkSubscribe, RetryPolicy, RouteRule

STATESTORE = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: actorStateStore
    value: true
  - name: ttlInSeconds
    value: 30
  - name: consumerID
    value: "{appID}-group"
"""

PUBSUB = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.in-memory
  metadata: []
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load_error(directory: Path, app_id: str = "app") -> str:
    with pytest.raises(ComponentError) as info:
        load_resources([directory], app_id)
    return str(info.value)


# --- files and documents -------------------------------------------------------------------


def test_component_fields_and_value_conversion(tmp_path: Path) -> None:
    path = write(tmp_path, "statestore.yaml", STATESTORE)
    (component,) = load_resources([tmp_path], "orders").components
    assert component.name == "statestore"
    assert component.type == "state.redis"
    assert component.version == "v1"
    assert component.source == str(path)
    assert component.metadata == {
        "redisHost": "localhost:6379",
        "actorStateStore": "true",
        "ttlInSeconds": "30",
        "consumerID": "orders-group",
    }


def test_version_defaults_to_v1_and_empty_metadata(tmp_path: Path) -> None:
    write(tmp_path, "pubsub.yml", PUBSUB)
    (component,) = load_resources([tmp_path], "app").components
    assert component.version == "v1"
    assert component.metadata == {}


def test_uuid_template_is_expanded(tmp_path: Path) -> None:
    write(
        tmp_path,
        "c.yaml",
        """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: c}
        spec:
          type: pubsub.redis
          metadata:
          - {name: consumerID, value: "group-{uuid}"}
          - {name: enabled, value: false}
        """,
    )
    (component,) = load_resources([tmp_path], "app").components
    consumer = component.metadata["consumerID"]
    assert consumer.startswith("group-")
    assert len(consumer) == len("group-") + 36
    assert "{uuid}" not in consumer
    assert component.metadata["enabled"] == "false"


def test_several_documents_per_file_and_empty_documents(tmp_path: Path) -> None:
    write(tmp_path, "all.yaml", "---\n" + STATESTORE + "\n---\n---\n" + PUBSUB + "\n---\n")
    names = [c.name for c in load_resources([tmp_path], "app").components]
    assert names == ["statestore", "pubsub"]


def test_files_are_read_in_name_order_across_paths(tmp_path: Path) -> None:
    write(tmp_path / "a", "b.yaml", STATESTORE)
    write(tmp_path / "a", "a.yaml", PUBSUB)
    write(tmp_path / "b", "c.yaml", STATESTORE.replace("name: statestore", "name: other"))
    resources = load_resources([tmp_path / "a", tmp_path / "b"], "app")
    assert [c.name for c in resources.components] == ["pubsub", "statestore", "other"]


def test_non_yaml_files_and_subdirectories_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="daca.runtime.loader")
    write(tmp_path, "statestore.yaml", STATESTORE)
    write(tmp_path, "README.md", "not: [yaml")
    write(tmp_path, "pubsub.yaml.bak", PUBSUB)
    write(tmp_path / "nested", "pubsub.yaml", PUBSUB)
    names = [c.name for c in load_resources([tmp_path], "app").components]
    assert names == ["statestore"]
    assert "README.md: not a top-level YAML file, skipped" in caplog.text


def test_other_kinds_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daca.runtime.loader")
    write(
        tmp_path,
        "misc.yaml",
        """
        apiVersion: dapr.io/v1alpha1
        kind: Configuration
        metadata: {name: appconfig}
        spec: {tracing: {samplingRate: "1"}}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: HTTPEndpoint
        metadata: {name: ext}
        spec: {baseUrl: "http://example.invalid"}
        ---
        version: 1
        apps: []
        """,
    )
    resources = load_resources([tmp_path], "app")
    assert resources.components == ()
    assert resources.subscriptions == ()
    assert resources.resiliencies == ()
    assert "kind 'Configuration' is not loaded" in caplog.text
    assert "kind 'HTTPEndpoint' is not loaded" in caplog.text


def test_missing_resources_path(tmp_path: Path) -> None:
    assert "does not exist" in load_error(tmp_path / "nope")
    write(tmp_path, "file.yaml", PUBSUB)
    assert "is not a directory" in load_error(tmp_path / "file.yaml")


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "kind: Component\nmetadata: [unclosed\n")
    message = load_error(tmp_path)
    assert message.startswith(f"{path}: cannot read YAML:")
    assert "line" in message


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "list.yaml", PUBSUB + "\n---\n- a\n- b\n")
    assert load_error(tmp_path) == f"{path}: document 2 is not a mapping"


# --- scopes and duplicates -----------------------------------------------------------------


def test_scopes_filter_components_and_allow_the_same_name_per_app(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", STATESTORE + "scopes: [orders]\n")
    write(tmp_path, "b.yaml", STATESTORE + "scopes: [billing, audit]\n")
    write(tmp_path, "c.yaml", PUBSUB + "scopes: []\n")
    orders = load_resources([tmp_path], "orders")
    assert [(c.name, c.source) for c in orders.components] == [
        ("statestore", str(tmp_path / "a.yaml")),
        ("pubsub", str(tmp_path / "c.yaml")),
    ]
    assert orders.components[0].scopes == ("orders",)
    billing = load_resources([tmp_path], "billing")
    assert billing.components[0].source == str(tmp_path / "b.yaml")
    assert [c.name for c in load_resources([tmp_path], "other").components] == ["pubsub"]


def test_scoped_out_resources_are_not_validated(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", "kind: Component\nmetadata: {name: x}\nscopes: [elsewhere]\n")
    assert load_resources([tmp_path], "app").components == ()


def test_scopes_must_be_a_list(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", PUBSUB + "scopes: orders\n")
    assert "Component 'pubsub': field 'scopes' must be a list, got 'orders'" in load_error(tmp_path)


def test_duplicate_component_names_name_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "one.yaml", STATESTORE)
    second = write(tmp_path, "two.yaml", STATESTORE)
    message = load_error(tmp_path)
    assert "component name 'statestore' is defined twice" in message
    assert str(first) in message
    assert str(second) in message


# --- component errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "kind: Component\nmetadata: {name: s}\nspec: {version: v1}\n",
            "Component 's': field 'spec.type' is required",
        ),
        (
            "kind: Component\nmetadata: {name: s}\n",
            "Component 's': field 'spec' is required",
        ),
        (
            "kind: Component\nmetadata: {name: s}\nspec: {type: 5}\n",
            "Component 's': field 'spec.type' must be a string, got 5",
        ),
        (
            "kind: Component\nmetadata: {}\nspec: {type: state.redis}\n",
            "Component: field 'metadata.name' is required",
        ),
        (
            "kind: Component\nmetadata: {name: s}\nspec: {type: t, metadata: {a: b}}\n",
            "Component 's': field 'spec.metadata' must be a list, got {'a': 'b'}",
        ),
        (
            "kind: Component\nmetadata: {name: s}\nspec: {type: t, metadata: [{value: x}]}\n",
            "Component 's': field 'spec.metadata[0].name' is required",
        ),
        (
            "kind: Component\nmetadata: {name: s}\nspec: {type: t, metadata: [{name: a, v: x}]}\n",
            "Component 's': field 'spec.metadata[0].v' is unknown",
        ),
    ],
)
def test_component_errors_name_file_component_and_field(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = write(tmp_path, "bad.yaml", body)
    message = load_error(tmp_path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_unknown_spec_field_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "c.yaml", PUBSUB.replace("metadata: []", "metadata: []\n  tpye: oops"))
    load_resources([tmp_path], "app")
    assert "Component 'pubsub': field 'spec.tpye' is unknown, ignored" in caplog.text


SECRET_COMPONENT = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec:
  type: state.redis
  metadata:
  - name: redisPassword
    secretKeyRef: {name: redis-secret, key: REDIS_PASSWORD}
  - name: redisUser
    secretKeyRef: {name: REDIS_USER}
"""


def test_secret_key_ref_reads_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("REDIS_USER", "default")
    write(tmp_path, "c.yaml", SECRET_COMPONENT)
    (component,) = load_resources([tmp_path], "app").components
    assert component.metadata == {"redisPassword": "s3cret", "redisUser": "default"}


def test_secret_key_ref_missing_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    path = write(tmp_path, "c.yaml", SECRET_COMPONENT)
    assert load_error(tmp_path) == (
        f"{path}: Component 'statestore': field 'spec.metadata[0].secretKeyRef' "
        "names environment variable 'REDIS_PASSWORD', which is not set"
    )


# --- subscriptions -------------------------------------------------------------------------

V1_SUB = """
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: orders-v1}
spec:
  pubsubname: pubsub
  topic: orders
  route: /orders
  deadLetterTopic: orders-dlq
  metadata: {rawPayload: false, maxCount: 3}
"""

V2_SUB = """
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: widgets}
spec:
  pubsubname: pubsub
  topic: widgets
  routes:
    rules:
    - match: event.type == "widget"
      path: /widgets
    - match: 'event.data.kind == "gadget" && !event.data.test'
      path: /gadgets
    default: /other
  bulkSubscribe: {enabled: false, maxMessagesCount: 100}
scopes: [app]
"""


def test_v1alpha1_subscription(tmp_path: Path) -> None:
    path = write(tmp_path, "sub.yaml", V1_SUB)
    (sub,) = load_resources([tmp_path], "app").subscriptions
    assert (sub.pubsubname, sub.topic, sub.default_route, sub.rules) == (
        "pubsub",
        "orders",
        "/orders",
        (),
    )
    assert sub.dead_letter_topic == "orders-dlq"
    assert sub.metadata == {"rawPayload": "false", "maxCount": "3"}
    assert sub.type == "DECLARATIVE"
    assert sub.name == "orders-v1"
    assert sub.source == str(path)


def test_v2alpha1_subscription(tmp_path: Path) -> None:
    write(tmp_path, "sub.yaml", V2_SUB)
    (sub,) = load_resources([tmp_path], "app").subscriptions
    assert sub.rules == (
        RouteRule('event.type == "widget"', "/widgets"),
        RouteRule('event.data.kind == "gadget" && !event.data.test', "/gadgets"),
    )
    assert sub.default_route == "/other"
    assert sub.dead_letter_topic is None
    assert sub.metadata == {}


def test_v2alpha1_rules_without_default(tmp_path: Path) -> None:
    write(tmp_path, "sub.yaml", V2_SUB.replace("    default: /other\n", ""))
    (sub,) = load_resources([tmp_path], "app").subscriptions
    assert sub.default_route is None
    assert len(sub.rules) == 2


def test_subscription_scoped_to_another_app_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "sub.yaml", V2_SUB)
    assert load_resources([tmp_path], "someone-else").subscriptions == ()


def test_first_subscription_per_topic_wins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "a.yaml", V1_SUB)
    write(tmp_path, "b.yaml", V1_SUB.replace("route: /orders", "route: /later"))
    write(tmp_path, "c.yaml", V1_SUB.replace("topic: orders", "topic: refunds"))
    subs = load_resources([tmp_path], "app").subscriptions
    assert [(s.topic, s.default_route) for s in subs] == [
        ("orders", "/orders"),
        ("refunds", "/orders"),
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(tmp_path / "b.yaml") in warnings[0].getMessage()
    assert "pubsub/orders was already loaded from" in warnings[0].getMessage()


def test_unsupported_match_expression_is_rejected_at_load(tmp_path: Path) -> None:
    expression = "undefined_fn(event)"
    with pytest.raises(UnsupportedExpressionError) as cel_error:
        compile_match(expression)
    path = write(tmp_path, "sub.yaml", V2_SUB.replace('event.type == "widget"', expression))
    message = load_error(tmp_path)
    assert message == (
        f"{path}: Subscription 'widgets': field 'spec.routes.rules[0].match' "
        f"cannot be compiled: {cel_error.value}"
    )
    assert repr(expression) in message


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("  pubsubname: pubsub\n", "", "field 'spec.pubsubname' is required"),
        ("  topic: widgets\n", "", "field 'spec.topic' is required"),
        ("      path: /widgets\n", "", "field 'spec.routes.rules[0].path' is required"),
        (
            "dapr.io/v2alpha1",
            "dapr.io/v3",
            "field 'apiVersion' must be 'dapr.io/v1alpha1' or 'dapr.io/v2alpha1', got 'dapr.io/v3'",
        ),
        (
            "- match: event.type",
            "- match: ''\n      x: event.type",
            "field 'spec.routes.rules[0].match' must not be empty",
        ),
    ],
)
def test_subscription_errors(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    assert replace in V2_SUB
    path = write(tmp_path, "sub.yaml", V2_SUB.replace(replace, by))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}: Subscription 'widgets': ")
    assert expected in message


def test_subscription_without_any_route(tmp_path: Path) -> None:
    write(tmp_path, "v1.yaml", V1_SUB.replace("  route: /orders\n", ""))
    assert "field 'spec' has no route: set spec.route (v1alpha1)" in load_error(tmp_path)


def test_v2_subscription_with_only_a_v1_route(tmp_path: Path) -> None:
    write(tmp_path, "v2.yaml", V1_SUB.replace("v1alpha1", "v2alpha1"))
    message = load_error(tmp_path)
    assert "Subscription 'orders-v1': field 'spec' has no route" in message
    assert "spec.routes.rules or spec.routes.default (v2alpha1)" in message


# --- resiliency ----------------------------------------------------------------------------

RESILIENCY = """
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: myresiliency}
scopes: [app]
spec:
  policies:
    timeouts:
      general: 5s
    retries:
      pubsubRetry:
        policy: constant
        duration: 100ms
        maxRetries: 3
      retryForever:
        policy: exponential
        maxInterval: 15s
        maxRetries: -1
  targets:
    apps:
      other: {retry: retryForever, timeout: general}
    components:
      pubsub:
        inbound: {retry: pubsubRetry, timeout: general}
      statestore:
        outbound: {retry: retryForever}
"""


def test_resiliency_targets_resolve_through_resources(tmp_path: Path) -> None:
    write(tmp_path, "resiliency.yaml", RESILIENCY)
    resources = load_resources([tmp_path], "app")
    (spec,) = resources.resiliencies
    assert spec.name == "myresiliency"
    assert resources.inbound_retry("pubsub") == RetryPolicy("constant", 0.1, 60.0, 3)
    assert resources.inbound_timeout("pubsub") == 5.0
    assert resources.inbound_retry("statestore") is None
    assert resources.inbound_retry("unknown") is None
    assert spec.app_retry == {"other": "retryForever"}
    assert spec.retries["retryForever"] == RetryPolicy("exponential", 5.0, 15.0, -1)


def test_resiliency_scoped_to_another_app_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "resiliency.yaml", RESILIENCY)
    resources = load_resources([tmp_path], "other-app")
    assert resources.resiliencies == ()
    assert resources.inbound_retry("pubsub") is None


def test_resiliency_target_naming_an_undefined_policy(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", RESILIENCY.replace("{retry: pubsubRetry,", "{retry: typo,"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}: Resiliency 'myresiliency': ")
    assert "field 'spec.targets.components.pubsub.inbound.retry' names policy 'typo'" in message
    assert "not defined (defined: pubsubRetry, retryForever)" in message


# --- configuration -------------------------------------------------------------------------


def test_load_configuration(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "config.yaml",
        """
        apiVersion: dapr.io/v1alpha1
        kind: Configuration
        metadata: {name: appconfig}
        spec: {tracing: {samplingRate: "1"}}
        """,
    )
    config = load_configuration(path)
    assert config["metadata"] == {"name": "appconfig"}
    assert config["spec"]["tracing"] == {"samplingRate": "1"}


def test_load_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ComponentError, match="does not exist"):
        load_configuration(tmp_path / "missing.yaml")
    path = write(tmp_path, "c.yaml", PUBSUB)
    with pytest.raises(ComponentError, match="no 'kind: Configuration' document"):
        load_configuration(path)
    broken = write(tmp_path, "b.yaml", "kind: [")
    with pytest.raises(ComponentError, match="cannot read YAML"):
        load_configuration(broken)


@pytest.mark.parametrize("value", ["ten", "0", "-2", "1.5"])
def test_a_subscription_concurrency_that_is_no_count_names_file_and_field(
    tmp_path: Path, value: str
) -> None:
    """Start-up fails at once (it used to leave the sidecar silently never ready)."""
    text = V1_SUB.replace(
        "metadata: {rawPayload: false, maxCount: 3}", f'metadata: {{concurrency: "{value}"}}'
    )
    write(tmp_path, "sub.yaml", text)
    message = load_error(tmp_path)
    assert "sub.yaml" in message and "orders-v1" in message
    assert "spec.metadata.concurrency" in message and repr(value) in message
    write(tmp_path, "sub.yaml", text.replace(f'"{value}"', '"4"'))
    (sub,) = load_resources([tmp_path], "app").subscriptions
    assert sub.metadata["concurrency"] == "4"


# --- how documents are validated (daca.runtime.documents) ----------------------------------


def test_every_problem_of_a_document_is_named_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        "kind: Component\nmetadata: {name: s}\nspec: {metadata: [{value: 1}, {name: b}, 7]}\n",
    )
    assert load_error(tmp_path) == (
        f"{path}: Component 's': field 'spec.type' is required; "
        "field 'spec.metadata[0].name' is required; "
        "field 'spec.metadata[2]' must be a mapping, got 7"
    )


def test_null_is_an_absent_field_as_in_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    write(
        tmp_path,
        "c.yaml",
        """
        kind: Component
        metadata: {name: c}
        spec:
          type: state.redis
          version: null
          metadata:
          - {name: a, value: null}
          - {name: b, value: x, secretKeyRef: null}
          - null
        scopes: null
        """,
    )
    message = load_error(tmp_path)
    assert message.endswith("field 'spec.metadata[2].name' is required")
    text = (tmp_path / "c.yaml").read_text().replace("  - null\n", "")
    (tmp_path / "c.yaml").write_text(text)
    (component,) = load_resources([tmp_path], "app").components
    assert (component.version, component.metadata) == ("v1", {"a": "", "b": "x"})


def test_unknown_fields_below_spec_are_logged_and_others_ignored_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = V2_SUB.replace("      path: /widgets\n", "      path: /widgets\n      pth: /typo\n")
    write(tmp_path, "sub.yaml", text + "status: {}\nauth: {secretStore: vault}\n")
    assert len(load_resources([tmp_path], "app").subscriptions) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{tmp_path / 'sub.yaml'}: Subscription 'widgets': "
        "field 'spec.routes.rules[0].pth' is unknown, ignored"
    ]


def test_each_subscription_version_ignores_the_other_versions_route(tmp_path: Path) -> None:
    write(tmp_path, "v2.yaml", V2_SUB.replace("  routes:\n", "  route: ''\n  routes:\n"))
    write(tmp_path, "v1.yaml", V1_SUB.replace("topic: orders", "topic: o") + "  routes: 5\n")
    topics = sorted(s.topic for s in load_resources([tmp_path], "app").subscriptions)
    assert topics == ["o", "widgets"]
    write(tmp_path, "v1.yaml", V1_SUB.replace("route: /orders", "route: ''"))
    assert "Subscription 'orders-v1': field 'spec.route' must not be empty" in load_error(tmp_path)


def test_bulk_subscribe_is_typed_as_in_daprd(tmp_path: Path) -> None:
    write(tmp_path, "sub.yaml", V2_SUB.replace("maxMessagesCount: 100", "maxMessagesCount: many"))
    assert load_error(tmp_path).endswith(
        "field 'spec.bulkSubscribe.maxMessagesCount' must be an integer, got 'many'"
    )


def test_bulk_subscribe_settings_reach_the_subscription(tmp_path: Path) -> None:
    bulk = "bulkSubscribe: {enabled: true, maxMessagesCount: 7, maxAwaitDurationMs: 250}"
    write(
        tmp_path,
        "sub.yaml",
        V2_SUB.replace("bulkSubscribe: {enabled: false, maxMessagesCount: 100}", bulk),
    )
    (sub,) = load_resources([tmp_path], "app").subscriptions
    assert sub.bulk_subscribe == BulkSubscribe(True, 7, 250)
    assert (sub.bulk_subscribe.messages, sub.bulk_subscribe.await_seconds) == (7, 0.25)


def test_bulk_subscribe_defaults_are_daprds(tmp_path: Path) -> None:
    write(tmp_path, "sub.yaml", V2_SUB.replace("maxMessagesCount: 100", "maxMessagesCount: 0"))
    (sub,) = load_resources([tmp_path], "app").subscriptions
    assert not sub.bulk_subscribe.enabled
    assert (sub.bulk_subscribe.messages, sub.bulk_subscribe.await_seconds) == (100, 1.0)


@pytest.mark.parametrize("field", ["maxMessagesCount", "maxAwaitDurationMs"])
def test_negative_bulk_subscribe_limits_are_refused(tmp_path: Path, field: str) -> None:
    bulk = f"bulkSubscribe: {{enabled: true, {field}: -1}}"
    path = write(
        tmp_path,
        "sub.yaml",
        V2_SUB.replace("bulkSubscribe: {enabled: false, maxMessagesCount: 100}", bulk),
    )
    error = load_error(tmp_path)
    assert error.startswith(str(path))
    assert f"field 'spec.bulkSubscribe.{field}'" in error


def test_a_configuration_of_the_wrong_shape_names_its_field(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yaml", "kind: Configuration\nmetadata: {name: c}\nspec: [x]\n")
    with pytest.raises(ComponentError) as info:
        load_configuration(path)
    assert (
        str(info.value) == f"{path}: Configuration 'c': field 'spec' must be a mapping, got ['x']"
    )
