"""Retry waits as daprd computes them, and parsing of ``kind: Resiliency`` documents."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from daca.runtime.errors import ComponentError
from daca.runtime.resiliency import describe, parse_resiliency, retry_delays
from daca.runtime.resources import RetryPolicy


def test_constant_yields_duration_max_retries_times() -> None:
    policy = RetryPolicy(policy="constant", duration=2.0, max_retries=3)
    assert list(retry_delays(policy)) == [2.0, 2.0, 2.0]


def test_max_retries_zero_means_no_retry() -> None:
    assert list(retry_delays(RetryPolicy(policy="constant", max_retries=0))) == []
    assert list(retry_delays(RetryPolicy(policy="exponential", max_retries=0))) == []


def test_constant_minus_one_is_unbounded() -> None:
    waits = retry_delays(RetryPolicy(policy="constant", duration=0.1, max_retries=-1))
    assert list(itertools.islice(waits, 10_000)) == [0.1] * 10_000


def test_exponential_grows_by_one_and_a_half_from_half_a_second() -> None:
    policy = RetryPolicy(policy="exponential", duration=99.0, max_interval=60.0, max_retries=5)
    assert list(retry_delays(policy)) == pytest.approx([0.5, 0.75, 1.125, 1.6875, 2.53125])


def test_exponential_is_capped_by_max_interval() -> None:
    policy = RetryPolicy(policy="exponential", max_interval=2.0, max_retries=7)
    assert list(retry_delays(policy)) == pytest.approx([0.5, 0.75, 1.125, 1.6875, 2, 2, 2])


def test_exponential_first_wait_is_the_initial_interval_even_above_max_interval() -> None:
    """As in cenkalti/backoff: maxInterval caps the *next* intervals, not the first."""
    policy = RetryPolicy(policy="exponential", max_interval=0.1, max_retries=4)
    assert list(retry_delays(policy)) == pytest.approx([0.5, 0.1, 0.1, 0.1])


def test_exponential_minus_one_runs_until_fifteen_minutes_of_waiting() -> None:
    policy = RetryPolicy(policy="exponential", max_interval=60.0, max_retries=-1)
    first = list(itertools.islice(retry_delays(policy), 12))
    assert first[:3] == pytest.approx([0.5, 0.75, 1.125])
    assert len(first) == 12
    waits = list(retry_delays(policy))
    assert sum(waits) <= 15 * 60
    assert sum(waits) + 60 > 15 * 60
    assert waits[-1] == 60.0


def test_exponential_jitter_stays_within_half_either_side() -> None:
    policy = RetryPolicy(policy="exponential", max_interval=5.0, max_retries=8)
    plain = list(retry_delays(policy))
    jittered = list(retry_delays(policy, rng=random.Random(7)))
    assert len(jittered) == len(plain)
    for wait, mid in zip(jittered, plain, strict=True):
        assert 0.5 * mid <= wait <= 1.5 * mid
    assert jittered != plain


def test_constant_ignores_rng() -> None:
    policy = RetryPolicy(policy="constant", duration=1.0, max_retries=2)
    assert list(retry_delays(policy, rng=random.Random(1))) == [1.0, 1.0]


def test_describe() -> None:
    assert describe(RetryPolicy(policy="constant", duration=5.0, max_retries=3)) == "constant 5s x3"
    assert describe(RetryPolicy(policy="exponential", max_interval=15.0)) == (
        "exponential from 0.5s max 15s forever"
    )


def _doc(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Resiliency",
        "metadata": {"name": "myresiliency"},
        "spec": spec,
    }


def test_parse_policies_and_targets() -> None:
    spec = parse_resiliency(
        _doc(
            {
                "policies": {
                    "timeouts": {"general": "5s", "quick": "500ms"},
                    "retries": {
                        "pubsubRetry": {"policy": "constant", "duration": "1s", "maxRetries": 3},
                        "forever": {"policy": "Exponential", "maxInterval": "15s"},
                        "defaults": {},
                    },
                    "circuitBreakers": {"cb": {"trip": "consecutiveFailures > 5"}},
                },
                "targets": {
                    "components": {
                        "pubsub": {"inbound": {"retry": "pubsubRetry", "timeout": "general"}},
                        "statestore": {"outbound": {"retry": "forever"}},
                    },
                    "apps": {"other-app": {"retry": "forever", "timeout": "quick"}},
                    "actors": {"SomeActor": {"retry": "forever"}},
                },
            }
        ),
        "res.yaml",
    )
    assert spec.name == "myresiliency"
    assert spec.source == "res.yaml"
    assert spec.timeouts == {"general": 5.0, "quick": 0.5}
    assert spec.retries == {
        "pubsubRetry": RetryPolicy("constant", 1.0, 60.0, 3),
        "forever": RetryPolicy("exponential", 5.0, 15.0, -1),
        "defaults": RetryPolicy("constant", 5.0, 60.0, -1),
    }
    assert spec.component_inbound_retry == {"pubsub": "pubsubRetry"}
    assert spec.component_inbound_timeout == {"pubsub": "general"}
    assert spec.app_retry == {"other-app": "forever"}
    assert spec.app_timeout == {"other-app": "quick"}


def test_parse_empty_spec() -> None:
    spec = parse_resiliency(_doc({}), "res.yaml")
    assert spec.retries == {}
    assert spec.component_inbound_retry == {}


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        (
            {"targets": {"components": {"pubsub": {"inbound": {"retry": "nope"}}}}},
            [
                "field 'spec.targets.components.pubsub.inbound.retry' names policy 'nope'",
                "not defined",
            ],
        ),
        (
            {
                "policies": {"retries": {"r": {}}},
                "targets": {"apps": {"app": {"timeout": "t"}}},
            },
            ["field 'spec.targets.apps.app.timeout' names policy 't'", "not defined"],
        ),
        (
            {"policies": {"retries": {"r": {"policy": "linear"}}}},
            ["field 'spec.policies.retries.r.policy' must be", "got 'linear'"],
        ),
        (
            {"policies": {"retries": {"r": {"duration": "soon"}}}},
            ["field 'spec.policies.retries.r.duration' is not a duration: 'soon'"],
        ),
        (
            {"policies": {"retries": {"r": {"duration": 5}}}},
            ["field 'spec.policies.retries.r.duration' needs a unit, as in '5s'"],
        ),
        (
            {"policies": {"retries": {"r": {"maxRetries": "many"}}}},
            ["field 'spec.policies.retries.r.maxRetries' must be an integer, got 'many'"],
        ),
        (
            {"policies": {"timeouts": {"t": "forever"}}},
            ["field 'spec.policies.timeouts.t' is not a duration: 'forever'"],
        ),
        ({"policies": ["x"]}, ["field 'spec.policies' must be a mapping, got ['x']"]),
    ],
)
def test_parse_errors_name_file_resiliency_and_field(
    spec: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ComponentError) as info:
        parse_resiliency(_doc(spec), "dir/res.yaml")
    message = str(info.value)
    assert message.startswith("dir/res.yaml: Resiliency 'myresiliency': field ")
    for fragment in fragments:
        assert fragment in message


def test_parse_requires_a_name() -> None:
    with pytest.raises(
        ComponentError, match=r"res\.yaml: Resiliency: field 'metadata\.name' is req"
    ):
        parse_resiliency({"kind": "Resiliency", "spec": {}}, "res.yaml")


def test_unknown_retry_key_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    parse_resiliency(_doc({"policies": {"retries": {"r": {"maxRetry": 3}}}}), "res.yaml")
    assert "field 'spec.policies.retries.r.maxRetry' is unknown, ignored" in caplog.text


def test_negative_max_retries_mean_forever() -> None:
    spec = parse_resiliency(_doc({"policies": {"retries": {"r": {"maxRetries": -5}}}}), "x.yaml")
    assert spec.retries["r"].max_retries == -1


def test_null_fields_keep_their_defaults_as_in_go() -> None:
    """daprd decodes ``null`` as Go's zero value, which leaves kit's defaults in place."""
    retry = {"policy": None, "duration": None, "maxInterval": None, "maxRetries": None}
    spec = parse_resiliency(_doc({"policies": {"retries": {"r": retry, "s": None}}}), "x.yaml")
    assert spec.retries == {"r": RetryPolicy(), "s": RetryPolicy()}


def test_unknown_target_keys_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    targets = {"components": {"pubsub": {"inbound": {"retyr": "r"}}}, "app": {}}
    parse_resiliency(_doc({"targets": targets}), "res.yaml")
    assert [r.getMessage() for r in caplog.records] == [
        "res.yaml: Resiliency 'myresiliency': field 'spec.targets.app' is unknown, ignored",
        "res.yaml: Resiliency 'myresiliency': "
        "field 'spec.targets.components.pubsub.inbound.retyr' is unknown, ignored",
    ]
