"""OpenTelemetry tracing of the services and the runtime, set by the standard ``OTEL_*`` variables.

Nothing is traced, and nothing exported, unless the environment asks for it:

- ``OTEL_TRACES_EXPORTER=otlp`` (or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): spans go to an OTLP/HTTP collector, configured by the
  exporter's own ``OTEL_EXPORTER_OTLP_*`` variables;
- ``OTEL_TRACES_EXPORTER=console``: spans are written to standard output, one JSON per span;
- ``OTEL_TRACES_EXPORTER=none``, or none of these: no provider, no instrumentation.

``OTEL_SERVICE_NAME`` names the process (default: the app id), ``OTEL_TRACES_SAMPLER`` and the
other SDK variables work as documented by OpenTelemetry. The provider is this module's, not
OpenTelemetry's global one, so a test can install an in-memory one for the apps it builds
(``provided``) and leave every other test untraced. Trace context travels as W3C
``traceparent``/``tracestate`` headers, and inside each CloudEvent, as Dapr carries it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

logger = logging.getLogger(__name__)

_provider: TracerProvider | None = None
_NO_TRACING = trace.NoOpTracerProvider()


def _exporter() -> SpanExporter | None:
    """The exporter the environment asks for, if any."""
    chosen = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if chosen == "console":
        return ConsoleSpanExporter()
    if chosen == "otlp" or (not chosen and endpoint):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if chosen not in ("", "none"):
        logger.warning("OTEL_TRACES_EXPORTER=%s is not supported (otlp, console, none)", chosen)
    return None


def configure(service_name: str) -> TracerProvider | None:
    """The process's provider: the one already set up, or one the environment asks for."""
    global _provider
    if _provider is not None:
        return _provider
    exporter = _exporter()
    if exporter is None:
        return None
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    console = isinstance(exporter, ConsoleSpanExporter)
    provider.add_span_processor(
        SimpleSpanProcessor(exporter) if console else BatchSpanProcessor(exporter)
    )
    _provider = provider
    logger.info("tracing: %s spans exported (%s)", name, type(exporter).__name__)
    return provider


def shutdown() -> None:
    """Flush and stop the provider (at process exit)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def enabled() -> bool:
    """Whether spans are recorded in this process."""
    return _provider is not None


def tracer(name: str) -> trace.Tracer:
    """A tracer of the process's provider (a no-op one when tracing is off)."""
    return (_provider or _NO_TRACING).get_tracer(name)


@contextlib.contextmanager
def provided(provider: TracerProvider) -> Iterator[TracerProvider]:
    """Use ``provider`` for what is built inside the block (tests)."""
    global _provider
    previous, _provider = _provider, provider
    try:
        yield provider
    finally:
        _provider = previous


#: The span attributes in which the instrumentations record a URL or its query: a query can
#: hold a user's words (``/search?q=...``), so only the path is kept.
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
_QUERY_ATTRIBUTES = ("url.query",)


def _without_queries(span: trace.Span) -> None:
    """Overwrite every URL attribute of ``span`` with the URL without its query."""
    recorded = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = recorded.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])
    for name in _QUERY_ATTRIBUTES:
        if name in recorded:
            span.set_attribute(name, "")


def _server_hook(span: trace.Span, scope: dict[str, Any]) -> None:
    _without_queries(span)


def instrument_app(app: FastAPI) -> None:
    """A server span for each request the app serves, child of the caller's ``traceparent``
    (its URL recorded without the query)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        exclude_spans=["receive", "send"],
        server_request_hook=_server_hook,
    )
