"""Typed Dapr resources as the loader produces them: components, subscriptions, resiliency.

These are plain values; :mod:`daca.runtime.loader` builds them from YAML and
:mod:`daca.runtime.registry` turns components into backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from daca.runtime.errors import ComponentError

SubscriptionType = Literal["DECLARATIVE", "PROGRAMMATIC"]


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """A ``kind: Component`` document, with ``secretKeyRef`` values already resolved."""

    name: str
    type: str  # e.g. "state.redis"
    version: str
    metadata: dict[str, str]
    source: str  # the file it came from, for error messages
    scopes: tuple[str, ...] = ()

    def error(self, field_name: str, problem: str) -> ComponentError:
        """A start-up error naming the file, the component and the field."""
        return ComponentError(
            f"{self.source}: component {self.name!r} ({self.type}): "
            f"metadata field {field_name!r} {problem}"
        )

    def require(self, field_name: str) -> str:
        value = self.metadata.get(field_name, "")
        if not value:
            raise self.error(field_name, "is required")
        return value

    def get(self, field_name: str, default: str = "") -> str:
        return self.metadata.get(field_name, default) or default

    def get_bool(self, field_name: str, default: bool = False) -> bool:
        raw = self.metadata.get(field_name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off"):
            return False
        raise self.error(field_name, f"must be a boolean, got {raw!r}")

    def get_int(self, field_name: str, default: int) -> int:
        raw = self.metadata.get(field_name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise self.error(field_name, f"must be an integer, got {raw!r}") from None


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One ``routes.rules`` entry; ``match`` is a CEL expression over ``event``."""

    match: str
    path: str


#: daprd's batch limits when a subscription leaves them 0 or unset (``default_bulksub.go``).
DEFAULT_BULK_MESSAGES = 100
DEFAULT_BULK_AWAIT_MS = 1000


@dataclass(frozen=True, slots=True)
class BulkSubscribe:
    """A subscription's ``bulkSubscribe`` settings as written; 0 means daprd's default."""

    enabled: bool = False
    max_messages_count: int = 0
    max_await_duration_ms: int = 0

    @property
    def messages(self) -> int:
        """Entries at most in one batch."""
        return self.max_messages_count or DEFAULT_BULK_MESSAGES

    @property
    def await_seconds(self) -> float:
        """How long the first message of a pending batch waits for the others."""
        return (self.max_await_duration_ms or DEFAULT_BULK_AWAIT_MS) / 1000


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A subscription of this app to one topic, normalised to the v2alpha1 shape."""

    pubsubname: str
    topic: str
    rules: tuple[RouteRule, ...] = ()
    default_route: str | None = None
    dead_letter_topic: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    type: SubscriptionType = "DECLARATIVE"
    name: str | None = None
    source: str | None = None
    bulk_subscribe: BulkSubscribe = BulkSubscribe()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A ``Resiliency`` retry policy. ``max_retries`` -1 means forever, 0 means none."""

    policy: Literal["constant", "exponential"] = "constant"
    duration: float = 5.0  # seconds; the constant interval (exponential ignores it, as daprd)
    max_interval: float = 60.0
    max_retries: int = -1


@dataclass(frozen=True, slots=True)
class ResiliencySpec:
    """The parts of ``kind: Resiliency`` the runtime applies."""

    name: str
    source: str
    retries: dict[str, RetryPolicy] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    #: component name -> retry policy name for inbound (pub/sub delivery to the app)
    component_inbound_retry: dict[str, str] = field(default_factory=dict)
    #: component name -> timeout name for inbound delivery
    component_inbound_timeout: dict[str, str] = field(default_factory=dict)
    #: app-id -> retry policy name for service invocation
    app_retry: dict[str, str] = field(default_factory=dict)
    app_timeout: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resources:
    """Everything loaded from the resources paths, filtered by ``scopes`` for one app-id."""

    components: tuple[ComponentSpec, ...] = ()
    subscriptions: tuple[SubscriptionSpec, ...] = ()
    resiliencies: tuple[ResiliencySpec, ...] = ()

    def inbound_retry(self, component: str) -> RetryPolicy | None:
        """The inbound retry policy for a pub/sub component, or ``None`` (no retry, as daprd)."""
        for spec in self.resiliencies:
            name = spec.component_inbound_retry.get(component)
            if name is not None:
                return spec.retries[name]
        return None

    def inbound_timeout(self, component: str) -> float | None:
        for spec in self.resiliencies:
            name = spec.component_inbound_timeout.get(component)
            if name is not None:
                return spec.timeouts[name]
        return None
