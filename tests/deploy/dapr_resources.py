"""Dapr's resources (Component, Subscription, Resiliency, Configuration) as strict models.

Kubernetes' OpenAPI schemas do not describe Dapr's custom resources, and Dapr's own CRDs leave
most of a spec open (a misspelt field is stored, and daprd ignores it). These models hold the
fields that Dapr's reference documents for each kind (the resource specs of Component,
Subscription v2alpha1, Resiliency and Configuration, and the pages on tracing, metrics, mTLS,
resiliency policies and targets that they link to) and forbid any other field. They are strict
as well: a bool or a number written as a string, or a duration daprd cannot parse, fails.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: Go's ``time.ParseDuration`` syntax, which daprd reads every duration with (``10s``, ``1m30s``).
Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")]
Name = Annotated[str, StringConstraints(min_length=1)]
Action = Literal["allow", "deny"]


class Strict(BaseModel):
    """No field but the declared ones, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ObjectMeta(Strict):
    """The metadata Dapr's resource specs use (a cluster adds the rest itself)."""

    name: Name
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


# --- Component ------------------------------------------------------------------------------


class SecretKeyRef(Strict):
    name: Name
    key: Name


class MetadataItem(Strict):
    """One component setting: a ``value``, or a ``secretKeyRef`` into the secret store."""

    name: Name
    value: str | int | float | bool | None = None
    secretKeyRef: SecretKeyRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = {"value", "secretKeyRef"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError(f"{self.name}: needs exactly one of value and secretKeyRef")
        return self


class ComponentAuth(Strict):
    secretStore: Name


class ComponentSpec(Strict):
    type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(\.[a-z0-9._-]+)+$")]
    version: Annotated[str, StringConstraints(pattern=r"^v[0-9]+((alpha|beta)[0-9]*)?$")]
    initTimeout: Duration | None = None
    ignoreErrors: bool = False
    metadata: list[MetadataItem] = []


class Component(Strict):
    apiVersion: Literal["dapr.io/v1alpha1"]
    kind: Literal["Component"]
    metadata: ObjectMeta
    auth: ComponentAuth | None = None
    spec: ComponentSpec
    scopes: list[Name] = []


# --- Subscription (v2alpha1) ----------------------------------------------------------------


class RouteRule(Strict):
    match: Name  # a CEL expression over the event
    path: Name


class Routes(Strict):
    rules: list[RouteRule] = []
    default: Name | None = None

    @model_validator(mode="after")
    def _somewhere_to_go(self) -> Self:
        if not self.rules and self.default is None:
            raise ValueError("routes need rules or a default")
        return self


class BulkSubscribe(Strict):
    enabled: bool
    maxMessagesCount: Annotated[int, Field(gt=0)] | None = None
    maxAwaitDurationMs: Annotated[int, Field(ge=0)] | None = None


class SubscriptionSpec(Strict):
    pubsubname: Name
    topic: Name
    routes: Routes
    deadLetterTopic: Name | None = None
    bulkSubscribe: BulkSubscribe | None = None
    metadata: dict[str, str] = {}


class Subscription(Strict):
    apiVersion: Literal["dapr.io/v2alpha1"]
    kind: Literal["Subscription"]
    metadata: ObjectMeta
    spec: SubscriptionSpec
    scopes: list[Name] = []


# --- Resiliency -----------------------------------------------------------------------------


class RetryMatching(Strict):
    httpStatusCodes: str | None = None  # "429,500-599"
    gRPCStatusCodes: str | None = None


class RetryPolicy(Strict):
    policy: Literal["constant", "exponential"] = "constant"
    duration: Duration | None = None
    maxInterval: Duration | None = None
    maxRetries: Annotated[int, Field(ge=-1)] | None = None
    matching: RetryMatching | None = None


class CircuitBreakerPolicy(Strict):
    maxRequests: Annotated[int, Field(ge=0)] | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    trip: Name  # a CEL expression, e.g. "consecutiveFailures >= 5"


class Policies(Strict):
    timeouts: dict[Name, Duration] = {}
    retries: dict[Name, RetryPolicy] = {}
    circuitBreakers: dict[Name, CircuitBreakerPolicy] = {}


class PolicyRefs(Strict):
    """The names of the policies that apply to a target."""

    timeout: Name | None = None
    retry: Name | None = None
    circuitBreaker: Name | None = None


class AppTarget(PolicyRefs):
    circuitBreakerCacheSize: Annotated[int, Field(gt=0)] | None = None


class ActorTarget(PolicyRefs):
    circuitBreakerScope: Literal["id", "type", "both"] | None = None
    circuitBreakerCacheSize: Annotated[int, Field(gt=0)] | None = None


class ComponentTarget(Strict):
    outbound: PolicyRefs | None = None
    inbound: PolicyRefs | None = None


class Targets(Strict):
    apps: dict[Name, AppTarget] = {}
    actors: dict[Name, ActorTarget] = {}
    components: dict[Name, ComponentTarget] = {}

    def refs(self) -> list[PolicyRefs]:
        found: list[PolicyRefs] = [*self.apps.values(), *self.actors.values()]
        for target in self.components.values():
            found += [ref for ref in (target.outbound, target.inbound) if ref is not None]
        return found


class ResiliencySpec(Strict):
    policies: Policies
    targets: Targets

    @model_validator(mode="after")
    def _targets_name_defined_policies(self) -> Self:
        """A target naming no defined policy gets none: daprd would apply nothing."""
        for ref in self.targets.refs():
            for name, defined in (
                (ref.timeout, self.policies.timeouts),
                (ref.retry, self.policies.retries),
                (ref.circuitBreaker, self.policies.circuitBreakers),
            ):
                if name is not None and name not in defined:
                    raise ValueError(f"a target names the undefined policy {name!r}")
        return self


class Resiliency(Strict):
    apiVersion: Literal["dapr.io/v1alpha1"]
    kind: Literal["Resiliency"]
    metadata: ObjectMeta
    version: Literal["v1alpha1"] | None = None  # in the documented format, though optional
    spec: ResiliencySpec
    scopes: list[Name] = []


# --- Configuration --------------------------------------------------------------------------


class OtelSpec(Strict):
    endpointAddress: Name
    isSecure: bool | None = None
    protocol: Literal["http", "grpc"] | None = None


class ZipkinSpec(Strict):
    endpointAddress: Name


class TracingSpec(Strict):
    #: A probability written as a string ("1", "0.01"); "0" turns tracing off.
    samplingRate: Annotated[str, StringConstraints(pattern=r"^(0(\.[0-9]+)?|1(\.0+)?)$")]
    stdout: bool | None = None
    otel: OtelSpec | None = None
    zipkin: ZipkinSpec | None = None


class MetricLabel(Strict):
    name: Name
    regex: dict[str, str] = {}


class MetricRule(Strict):
    name: Name
    labels: list[MetricLabel] = []


class MetricHTTP(Strict):
    increasedCardinality: bool | None = None
    pathMatching: list[str] = []
    excludeVerbs: bool | None = None


class MetricSpec(Strict):
    enabled: bool | None = None
    rules: list[MetricRule] = []
    recordErrorCodes: bool | None = None
    latencyDistributionBuckets: list[int] = []
    http: MetricHTTP | None = None


class MTLSSpec(Strict):
    enabled: bool
    allowedClockSkew: Duration | None = None
    workloadCertTTL: Duration | None = None
    controlPlaneTrustDomain: str | None = None
    sentryAddress: str | None = None


class NameResolutionSpec(Strict):
    component: Name
    version: str | None = None
    configuration: dict[str, Any] = {}  # the resolver's own settings


class Feature(Strict):
    name: Name
    enabled: bool


class Handler(Strict):
    name: Name
    type: Name


class Pipeline(Strict):
    handlers: list[Handler]


class APIRule(Strict):
    name: Name
    version: Name
    protocol: Literal["http", "grpc"] | None = None


class APISpec(Strict):
    allowed: list[APIRule] = []
    denied: list[APIRule] = []


class SecretScope(Strict):
    storeName: Name
    defaultAccess: Action | None = None
    allowedSecrets: list[str] = []
    deniedSecrets: list[str] = []


class SecretsSpec(Strict):
    scopes: list[SecretScope]


class ComponentsSpec(Strict):
    deny: list[str] = []


class Operation(Strict):
    name: Name
    httpVerb: list[str] = []
    action: Action


class AppPolicy(Strict):
    appId: Name
    defaultAction: Action | None = None
    trustDomain: str | None = None
    namespace: str | None = None
    operations: list[Operation] = []


class AccessControlSpec(Strict):
    defaultAction: Action | None = None
    trustDomain: str | None = None
    policies: list[AppPolicy] = []


class APILogging(Strict):
    enabled: bool | None = None
    obfuscateURLs: bool | None = None
    omitHealthChecks: bool | None = None


class LoggingSpec(Strict):
    apiLogging: APILogging | None = None


class WorkflowSpec(Strict):
    maxConcurrentWorkflowInvocations: Annotated[int, Field(gt=0)] | None = None
    maxConcurrentActivityInvocations: Annotated[int, Field(gt=0)] | None = None


class ConfigurationSpec(Strict):
    tracing: TracingSpec | None = None
    metrics: MetricSpec | None = None
    metric: MetricSpec | None = None  # the CRD's older name of `metrics`
    mtls: MTLSSpec | None = None
    nameResolution: NameResolutionSpec | None = None
    features: list[Feature] = []
    httpPipeline: Pipeline | None = None
    appHttpPipeline: Pipeline | None = None
    api: APISpec | None = None
    secrets: SecretsSpec | None = None
    components: ComponentsSpec | None = None
    accessControl: AccessControlSpec | None = None
    logging: LoggingSpec | None = None
    workflow: WorkflowSpec | None = None


class Configuration(Strict):
    apiVersion: Literal["dapr.io/v1alpha1"]
    kind: Literal["Configuration"]
    metadata: ObjectMeta
    spec: ConfigurationSpec


MODELS: dict[tuple[str, str], type[Strict]] = {
    ("dapr.io/v1alpha1", "Component"): Component,
    ("dapr.io/v2alpha1", "Subscription"): Subscription,
    ("dapr.io/v1alpha1", "Resiliency"): Resiliency,
    ("dapr.io/v1alpha1", "Configuration"): Configuration,
}


class UnknownDaprResource(ValueError):
    """An apiVersion and kind that no model here describes."""


def validate(doc: dict[str, Any]) -> Strict:
    """``doc`` as its model; raises ``pydantic.ValidationError`` where it breaks the spec."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key not in MODELS:
        raise UnknownDaprResource(f"no model for {key[1]} {key[0]}")
    return MODELS[key].model_validate(doc)
