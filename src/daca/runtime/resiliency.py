"""Dapr ``kind: Resiliency`` documents: parsing them, and the waits a retry policy prescribes.

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
from typing import Any

from daca.runtime.durations import parse_duration
from daca.runtime.errors import ComponentError
from daca.runtime.resources import ResiliencySpec, RetryPolicy

logger = logging.getLogger(__name__)

INITIAL_INTERVAL = 0.5
MULTIPLIER = 1.5
RANDOMIZATION_FACTOR = 0.5
MAX_ELAPSED = 15 * 60.0

_RETRY_KEYS = {"policy", "duration", "maxInterval", "maxRetries", "matching"}


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


def parse_resiliency(doc: Mapping[str, Any], source: str) -> ResiliencySpec:
    """Build a :class:`ResiliencySpec` from one ``kind: Resiliency`` document read from ``source``.

    Raises :class:`ComponentError` naming the file, the resiliency and the field at fault,
    including a target that names a policy this document does not define.
    """
    ctx = _Context(source, _name(doc, source))
    spec = ctx.mapping(doc.get("spec"), "spec")
    policies = ctx.mapping(spec.get("policies"), "spec.policies")
    targets = ctx.mapping(spec.get("targets"), "spec.targets")
    if policies.get("circuitBreakers"):
        logger.info("%s: resiliency %r: circuit breakers are not applied", source, ctx.name)
    ctx.retries = _retries(ctx, policies.get("retries"))
    ctx.timeouts = _timeouts(ctx, policies.get("timeouts"))
    inbound_retry, inbound_timeout = _components(ctx, targets.get("components"))
    app_retry, app_timeout = _apps(ctx, targets.get("apps"))
    return ResiliencySpec(
        name=ctx.name,
        source=source,
        retries=ctx.retries,
        timeouts=ctx.timeouts,
        component_inbound_retry=inbound_retry,
        component_inbound_timeout=inbound_timeout,
        app_retry=app_retry,
        app_timeout=app_timeout,
    )


class _Context:
    """Where in which document we are, for error messages."""

    def __init__(self, source: str, name: str) -> None:
        self.source = source
        self.name = name
        self.retries: dict[str, RetryPolicy] = {}
        self.timeouts: dict[str, float] = {}

    def error(self, field: str, problem: str) -> ComponentError:
        return ComponentError(f"{self.source}: resiliency {self.name!r}: {field} {problem}")

    def mapping(self, value: object, field: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(field, f"must be a mapping, got {type(value).__name__}")
        return value

    def duration(self, value: object, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(field, f"must be a duration such as '5s', got {value!r}")
        text = str(value).strip()
        if text.replace(".", "", 1).isdigit() and float(text) != 0:
            raise self.error(field, f"needs a unit, as in '{text}s' or '{text}ms'")
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise self.error(field, str(exc)) from None


def _name(doc: Mapping[str, Any], source: str) -> str:
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ComponentError(f"{source}: resiliency: field 'metadata.name' is required")
    return name


def _retries(ctx: _Context, raw: object) -> dict[str, RetryPolicy]:
    section = ctx.mapping(raw, "spec.policies.retries")
    return {
        name: _retry(ctx, ctx.mapping(body, f"spec.policies.retries.{name}"), name)
        for name, body in section.items()
    }


def _retry(ctx: _Context, raw: Mapping[str, Any], name: str) -> RetryPolicy:
    field = f"spec.policies.retries.{name}"
    for key in sorted(set(raw) - _RETRY_KEYS):
        logger.warning(
            "%s: resiliency %r: %s.%s is unknown, ignored", ctx.source, ctx.name, field, key
        )
    kind = str(raw.get("policy", "constant")).lower()
    if kind not in ("constant", "exponential"):
        raise ctx.error(f"{field}.policy", f"must be 'constant' or 'exponential', got {kind!r}")
    return RetryPolicy(
        policy="exponential" if kind == "exponential" else "constant",
        duration=ctx.duration(raw.get("duration", "5s"), f"{field}.duration"),
        max_interval=ctx.duration(raw.get("maxInterval", "60s"), f"{field}.maxInterval"),
        max_retries=_max_retries(ctx, raw.get("maxRetries", -1), f"{field}.maxRetries"),
    )


def _max_retries(ctx: _Context, value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ctx.error(field, f"must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ctx.error(field, f"must be an integer, got {value!r}") from None
    return max(number, -1)


def _timeouts(ctx: _Context, raw: object) -> dict[str, float]:
    section = ctx.mapping(raw, "spec.policies.timeouts")
    return {
        name: ctx.duration(value, f"spec.policies.timeouts.{name}")
        for name, value in section.items()
    }


_Names = dict[str, str]


def _components(ctx: _Context, raw: object) -> tuple[_Names, _Names]:
    retries: _Names = {}
    timeouts: _Names = {}
    for component, body in ctx.mapping(raw, "spec.targets.components").items():
        field = f"spec.targets.components.{component}"
        target = ctx.mapping(body, field)
        if "outbound" in target:
            logger.debug("%s: %s.outbound is not applied", ctx.source, field)
        inbound = ctx.mapping(target.get("inbound"), f"{field}.inbound")
        _link(ctx, inbound, f"{field}.inbound", component, (retries, timeouts))
    return retries, timeouts


def _apps(ctx: _Context, raw: object) -> tuple[_Names, _Names]:
    retries: _Names = {}
    timeouts: _Names = {}
    for app_id, body in ctx.mapping(raw, "spec.targets.apps").items():
        field = f"spec.targets.apps.{app_id}"
        _link(ctx, ctx.mapping(body, field), field, app_id, (retries, timeouts))
    return retries, timeouts


def _link(
    ctx: _Context, target: Mapping[str, Any], field: str, key: str, into: tuple[_Names, _Names]
) -> None:
    """Record ``target``'s retry and timeout names under ``key`` after checking they exist."""
    retry = _reference(ctx, target.get("retry"), f"{field}.retry", ctx.retries)
    timeout = _reference(ctx, target.get("timeout"), f"{field}.timeout", ctx.timeouts)
    if retry is not None:
        into[0][key] = retry
    if timeout is not None:
        into[1][key] = timeout


def _reference(
    ctx: _Context, name: object, field: str, defined: Mapping[str, object]
) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in defined:
        known = ", ".join(sorted(defined)) or "none"
        raise ctx.error(field, f"names policy {name!r}, which is not defined (defined: {known})")
    return name
