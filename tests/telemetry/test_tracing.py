"""``daca.telemetry.tracing``: nothing recorded unless the ``OTEL_*`` variables ask for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from daca.chat.app import create_app
from daca.telemetry import tracing
from tests.chat.conftest import chat_settings


@pytest.fixture(autouse=True)
def _fresh_provider() -> Iterator[None]:
    tracing.shutdown()
    yield
    tracing.shutdown()


def exporter_of(provider: TracerProvider) -> object:
    [processor] = provider._active_span_processor._span_processors
    return processor.span_exporter  # type: ignore[attr-defined]


def otel_middleware(app: object) -> bool:
    """Whether the OpenTelemetry instrumentation wrapped the app."""
    return bool(getattr(app, "_is_instrumented_by_opentelemetry", False))


def test_no_variable_no_provider_no_instrumentation() -> None:
    assert tracing.configure("chat-service") is None
    assert not tracing.enabled()
    assert not otel_middleware(create_app(chat_settings()))


@pytest.mark.parametrize(
    ("variables", "exporter"),
    [
        ({"OTEL_TRACES_EXPORTER": "console"}, ConsoleSpanExporter),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, OTLPSpanExporter),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, OTLPSpanExporter),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
            OTLPSpanExporter,
        ),
    ],
)
def test_the_standard_variables_choose_the_exporter(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], exporter: type
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-chat")
    provider = tracing.configure("chat-service")
    assert provider is not None and tracing.enabled()
    assert isinstance(exporter_of(provider), exporter)
    assert provider.resource.attributes["service.name"] == "my-chat"
    assert tracing.configure("other") is provider  # once per process
    assert otel_middleware(create_app(chat_settings()))


@pytest.mark.parametrize("value", ["none", "zipkin"])
def test_none_or_an_unknown_exporter_records_nothing(
    monkeypatch: pytest.MonkeyPatch, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.configure("chat-service") is None
    assert ("not supported" in caplog.text) == (value == "zipkin")
