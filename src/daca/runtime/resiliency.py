"""Dapr ``kind: Resiliency`` documents: their model, and the waits a retry policy prescribes.

How daprd reads a retry policy (``dapr/dapr: pkg/resiliency/resiliency.go`` ``decodePolicies``):
it starts from ``dapr/kit: retry/retry.go`` ``DefaultConfig()`` and decodes only the YAML keys
``policy``, ``duration``, ``maxInterval`` and ``maxRetries`` into it. So:

- ``constant`` waits ``duration`` (default 5s) before every retry.
- ``exponential`` **ignores** ``duration`` (the docs, ``operations/resiliency/policies.md``, say
  ``duration`` "only applies to the constant policy") and uses cenkalti/backoff v4's
  ``ExponentialBackOff`` defaults: initial interval 500ms, multiplier 1.5, randomization factor
  0.5, the policy's ``maxInterval`` (default 60s) and a MaxElapsedTime of 15 minutes.
- ``maxRetries``: -1 (any negative) retries forever, 0 never retries, N retries N times.

The exponential waits, from ``cenkalti/backoff: exponential.go`` (``NextBackOff``,
``incrementCurrentInterval``, ``getRandomValueFromInterval``)::

    interval_0     = 0.5 s
    wait_n         = interval_n * (1 + 0.5 * u),   u uniform in [-1, 1]
    interval_n+1   = maxInterval if interval_n >= maxInterval / 1.5 else interval_n * 1.5
    stop           when (time elapsed so far) + wait_n > 15 min

``maxInterval`` caps the interval, not the randomized wait, and the first interval is 0.5 s even
when ``maxInterval`` is smaller (exactly as in cenkalti/backoff). :func:`retry_delays` uses the
midpoint (``u = 0``) unless given a ``random.Random``, and measures "time elapsed" as the sum of
the waits so far (it cannot see how long the attempts took, so it may allow a few more retries
than daprd would after 15 minutes). So exponential with ``maxRetries: -1`` ends after about
15 minutes of waiting; constant with -1 never ends.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from daca.runtime.documents import (
    Checked,
    NamedMeta,
    Resource,
    Where,
    document_name,
    required_name,
)
from daca.runtime.durations import parse_duration
from daca.runtime.resources import ResiliencySpec, RetryPolicy

logger = logging.getLogger(__name__)

INITIAL_INTERVAL = 0.5
MULTIPLIER = 1.5
RANDOMIZATION_FACTOR = 0.5
MAX_ELAPSED = 15 * 60.0


def retry_delays(policy: RetryPolicy, *, rng: random.Random | None = None) -> Iterator[float]:
    """The seconds to wait before each retry: ``max_retries`` values, or unbounded for -1.

    ``rng`` adds daprd's ±50% jitter to exponential waits; without it they are the midpoints.
    """
    if policy.policy == "exponential":
        waits = _exponential(policy.max_interval, rng)
    else:
        waits = itertools.repeat(policy.duration)
    if policy.max_retries < 0:
        return waits
    return itertools.islice(waits, policy.max_retries)


def _exponential(max_interval: float, rng: random.Random | None) -> Iterator[float]:
    interval, elapsed = INITIAL_INTERVAL, 0.0
    while True:
        spread = 0.0 if rng is None else rng.uniform(-1.0, 1.0)
        wait = interval * (1 + RANDOMIZATION_FACTOR * spread)
        if elapsed + wait > MAX_ELAPSED:
            return
        elapsed += wait
        yield wait
        grown = interval >= max_interval / MULTIPLIER
        interval = max_interval if grown else interval * MULTIPLIER


def describe(policy: RetryPolicy) -> str:
    """A one-line summary for logs, e.g. ``constant 5s x3`` or ``exponential max 60s forever``."""
    count = "forever" if policy.max_retries < 0 else f"x{policy.max_retries}"
    if policy.policy == "exponential":
        return f"exponential from {INITIAL_INTERVAL:g}s max {policy.max_interval:g}s {count}"
    return f"constant {policy.duration:g}s {count}"


def _duration(value: object) -> float:
    """Seconds in a policy duration; a bare number other than 0 is refused (which unit?)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a duration such as '5s', got {value!r}")
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit() and float(text) != 0:
        raise ValueError(f"needs a unit, as in '{text}s' or '{text}ms'")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"is {exc}") from None


def _lowercase(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _max_retries(value: object) -> int:
    """An integer (or its digits); any negative is -1, forever."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be an integer, got {value!r}")
    try:
        return max(int(value), -1)
    except ValueError:
        raise ValueError(f"must be an integer, got {value!r}") from None


Duration = Annotated[float, BeforeValidator(_duration)]


class _Retry(Checked):
    """daprd decodes these keys over kit's ``DefaultConfig()``: the defaults are kit's."""

    policy: Annotated[Literal["constant", "exponential"], BeforeValidator(_lowercase)] = "constant"
    duration: Duration = 5.0
    max_interval: Duration = 60.0
    max_retries: Annotated[int, BeforeValidator(_max_retries)] = -1
    matching: dict[str, Any] = {}


class _Policies(Checked):
    timeouts: dict[str, Duration] = {}
    retries: dict[str, _Retry] = {}
    circuit_breakers: dict[str, Any] = {}


class _PolicyNames(Checked):
    timeout: str | None = None
    retry: str | None = None
    circuit_breaker: str | None = None


class _EndpointPolicyNames(_PolicyNames):
    circuit_breaker_cache_size: int = 0


class _ComponentPolicyNames(Checked):
    inbound: _PolicyNames = _PolicyNames()
    outbound: _PolicyNames = _PolicyNames()


class _Targets(Checked):
    apps: dict[str, _EndpointPolicyNames] = {}
    actors: dict[str, Any] = {}
    components: dict[str, _ComponentPolicyNames] = {}


class _Spec(Checked):
    policies: _Policies = _Policies()
    targets: _Targets = _Targets()


class _Resiliency(Resource):
    """daprd's ``resiliency/v1alpha1`` types; the parts daca does not apply are still named, so
    that only a real typo is logged as unknown."""

    metadata: NamedMeta = required_name()
    spec: _Spec = _Spec()


_Names = dict[str, str]


def parse_resiliency(doc: Mapping[str, Any], source: str) -> ResiliencySpec:
    """Build a :class:`ResiliencySpec` from one ``kind: Resiliency`` document read from ``source``.

    Raises :class:`ComponentError` naming the file, the resiliency and the field at fault,
    including a target that names a policy this document does not define.
    """
    where = Where.resource(source, "Resiliency", document_name(doc))
    resiliency = where.validate(_Resiliency, doc)
    policies, targets = resiliency.spec.policies, resiliency.spec.targets
    if policies.circuit_breakers:
        logger.info("%s", where.message("spec.policies.circuitBreakers", "is not applied"))
    inbound: tuple[_Names, _Names] = ({}, {})
    apps: tuple[_Names, _Names] = ({}, {})
    for component, names in targets.components.items():
        field = f"spec.targets.components.{component}"
        if "outbound" in names.model_fields_set:
            logger.debug("%s", where.message(f"{field}.outbound", "is not applied"))
        _link(where, policies, names.inbound, f"{field}.inbound", component, inbound)
    for app_id, app in targets.apps.items():
        _link(where, policies, app, f"spec.targets.apps.{app_id}", app_id, apps)
    return ResiliencySpec(
        name=resiliency.metadata.name,
        source=source,
        retries={
            name: RetryPolicy(
                policy=retry.policy,
                duration=retry.duration,
                max_interval=retry.max_interval,
                max_retries=retry.max_retries,
            )
            for name, retry in policies.retries.items()
        },
        timeouts=dict(policies.timeouts),
        component_inbound_retry=inbound[0],
        component_inbound_timeout=inbound[1],
        app_retry=apps[0],
        app_timeout=apps[1],
    )


def _link(
    where: Where,
    policies: _Policies,
    target: _PolicyNames,
    field: str,
    key: str,
    into: tuple[_Names, _Names],
) -> None:
    """Record ``target``'s retry and timeout names under ``key`` after checking they exist."""
    for name, kind, defined, names in (
        (target.retry, "retry", policies.retries, into[0]),
        (target.timeout, "timeout", policies.timeouts, into[1]),
    ):
        if name is None:
            continue
        if name not in defined:
            known = ", ".join(sorted(defined)) or "none"
            raise where.error(
                f"{field}.{kind}", f"names policy {name!r}, which is not defined (defined: {known})"
            )
        names[key] = name
