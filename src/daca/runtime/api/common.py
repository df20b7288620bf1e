"""What every endpoint shares: the runtime context, error rendering, request metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daca.runtime.errors import DaprError
from daca.runtime.metrics import RuntimeMetrics
from daca.runtime.registry import Components
from daca.runtime.resources import Resources, SubscriptionSpec

if TYPE_CHECKING:
    from daca.runtime.invoke import Invoker
    from daca.runtime.outbox import Outbox

METADATA_PREFIX = "metadata."
_DETAIL = "type.googleapis.com/google.rpc."


@dataclass
class RuntimeContext:
    """What the endpoints read; owned and filled in by :class:`daca.runtime.sidecar.Sidecar`."""

    app_id: str
    components: Components
    resources: Resources
    invoker: Invoker
    outbox: Outbox | None = None
    app_port: int | None = None
    app_channel_address: str = "127.0.0.1"
    subscriptions: list[SubscriptionSpec] = field(default_factory=list)
    extended: dict[str, str] = field(default_factory=dict)
    #: True once the app's subscriptions are in place (or there is no app): GET /v1.0/healthz.
    ready: bool = False
    metrics: RuntimeMetrics = field(default_factory=lambda: RuntimeMetrics(""))


def context(request: Request) -> RuntimeContext:
    ctx: RuntimeContext = request.app.state.context
    return ctx


def error_response(error: DaprError) -> Response:
    """The one renderer of the runtime's errors: each class's status and code, daprd's body."""
    body: dict[str, Any] = {"errorCode": error.error_code, "message": error.message}
    if error.details:
        body["details"] = error.details
    return JSONResponse(body, error.status)


def error_info(reason: str, metadata: dict[str, str] | None) -> dict[str, Any]:
    """The ``ErrorInfo`` detail daprd's error builder adds."""
    return {
        "@type": _DETAIL + "ErrorInfo",
        "domain": "dapr.io",
        "metadata": metadata,
        "reason": reason,
    }


def resource_info(name: str, kind: str, description: str) -> dict[str, Any]:
    """The ``ResourceInfo`` detail naming the component (``kind``: ``state``, ``pubsub``)."""
    return {
        "@type": _DETAIL + "ResourceInfo",
        "description": description,
        "owner": "",
        "resource_name": name,
        "resource_type": kind,
    }


def request_metadata(request: Request) -> dict[str, str]:
    """``metadata.<k>`` query parameters as ``{k: v}``; the first value of a repeated key wins."""
    metadata: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name.startswith(METADATA_PREFIX):
            metadata.setdefault(name[len(METADATA_PREFIX) :], value)
    return metadata
