"""One publish request as daprd's ``onPublish`` and ``onBulkPublish`` check it, and its errors.

The pub/sub is checked first (``validateAndGetPubsubAndTopic``), ``rawPayload`` when the
endpoint reads it; errors carry daprd's ``details`` (ResourceInfo and ErrorInfo,
``pkg/api/errors/pubsub.go``). :meth:`PublishCall.message` builds the bytes given to the broker
for one event: the body itself for ``rawPayload``, else its CloudEvent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from daca.runtime.api.common import (
    RuntimeContext,
    context,
    error_info,
    request_metadata,
    resource_info,
)
from daca.runtime.cloudevents import (
    EnvelopeError,
    cloudevent_overrides,
    complete_envelope,
    encode,
    is_cloudevent_content_type,
    new_envelope,
)
from daca.runtime.errors import (
    DaprError,
    PubsubCloudEventsSer,
    PubsubEmpty,
    PubsubNotFound,
    PubsubPublishFailed,
    PubsubRequestMetadata,
    TopicNameEmpty,
)
from daca.runtime.gofmt import parse_go_bool
from daca.runtime.pubsub.base import PubSub
from daca.runtime.tracecontext import incoming_trace
from daca.runtime.ttl import apply_ttl


def pubsub_error(
    error: type[DaprError],
    reason: str,
    message: str,
    *,
    pubsub: str,
    metadata: Mapping[str, str],
    resource: bool = True,
) -> DaprError:
    """A pub/sub error with the ``details`` daprd's error builder adds."""
    details: list[dict[str, Any]] = [resource_info(pubsub, "pubsub", message)] if resource else []
    details.append(error_info(reason, dict(metadata)))
    return error(message, details=details)


class PublishCall:
    """One publish request: the pub/sub it names, its topic and metadata."""

    def __init__(self, request: Request) -> None:
        self.ctx: RuntimeContext = context(request)
        self.name: str = request.path_params["pubsub"]
        self.topic: str = request.path_params.get("topic", "")
        self.metadata = request_metadata(request)
        self.trace = incoming_trace(
            request.headers.get("traceparent"), request.headers.get("tracestate")
        )
        self.pubsub: PubSub = self._pubsub()
        if not self.topic:
            message = f"topic is empty in pubsub {self.name}"
            raise self.error(TopicNameEmpty, "DAPR_PUBSUB_TOPIC_NAME_EMPTY", message)
        self.raw = False

    def _pubsub(self) -> PubSub:
        if not self.name:
            raise self.error(PubsubEmpty, "DAPR_PUBSUB_NAME_EMPTY", "pubsub name is empty")
        pubsub = self.ctx.components.pubsubs.get(self.name)
        if pubsub is None:
            message = f"pubsub {self.name} is not found"
            raise pubsub_error(
                PubsubNotFound, "DAPR_PUBSUB_NOT_FOUND", message,
                pubsub=self.name, metadata=self.metadata, resource=False,
            )  # fmt: skip
        return pubsub

    def error(
        self,
        error: type[DaprError],
        reason: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
    ) -> DaprError:
        meta = self.metadata if metadata is None else metadata
        return pubsub_error(error, reason, message, pubsub=self.name, metadata=meta)

    def read_raw_payload(self) -> None:
        """Take ``metadata.rawPayload`` (Go's ``ParseBool``); a value it refuses is a 400."""
        raw = self.metadata.get("rawPayload", "")
        try:
            self.raw = parse_go_bool(raw) if raw else False
        except ValueError:
            problem = f"rawPayload value must be a valid boolean: actual is '{raw}'"
            message = f"failed deserializing metadata. Error: {problem}"
            raise self.error(
                PubsubRequestMetadata, "DAPR_PUBSUB_METADATA_DESERIALIZATION", message
            ) from None

    def app_error(self, error: type[DaprError], reason: str, message: str, cause: str) -> DaprError:
        meta = {"appID": self.ctx.app_id, **({"error": cause} if cause else {})}
        return self.error(error, reason, message, meta)

    def message(self, body: bytes, content_type: str, metadata: Mapping[str, str] | None) -> bytes:
        """The bytes given to the broker for one event (``NewCloudEvent`` + ``ApplyMetadata``)."""
        if self.raw:
            return body
        meta = metadata or {}
        if is_cloudevent_content_type(content_type):
            envelope = self._completed(body)
        else:
            traceparent, tracestate = self.trace
            envelope = new_envelope(
                body,
                content_type=content_type,
                source=self.ctx.app_id,
                topic=self.topic,
                pubsub=self.name,
                traceparent=traceparent,
                tracestate=tracestate,
                overrides=cloudevent_overrides(meta),
            )
        apply_ttl(envelope, meta)
        return encode(envelope)

    def _completed(self, body: bytes) -> dict[str, Any]:
        """The caller's CloudEvent completed; one that is none is daprd's 500."""
        traceparent, tracestate = self.trace
        try:
            return complete_envelope(
                body, topic=self.topic, pubsub=self.name,
                traceparent=traceparent, tracestate=tracestate,
            )  # fmt: skip
        except EnvelopeError as exc:
            raise self.app_error(
                PubsubCloudEventsSer, "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
                "cannot create cloudevent", str(exc),
            ) from exc  # fmt: skip

    def publish_failed(self, exc: Exception) -> DaprError:
        message = f"error when publishing to topic {self.topic} in pubsub {self.name}: {exc}"
        meta = {"topic": self.topic, "error": str(exc)}
        return self.error(PubsubPublishFailed, "DAPR_PUBSUB_PUBLISH_MESSAGE", message, meta)
