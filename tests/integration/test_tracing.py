"""One chat turn is one connected trace across both services and both sidecars.

The spans are collected in memory (``daca.telemetry.tracing.provided``) from everything built
in the test: both apps and, on the daca engine, both sidecars. daprd records (and exports) its
spans only with a tracing configuration of its own, which the test does not give it, and then
it does not carry the transaction's trace into the outbox event: on daprd the test checks the
invocations' part of the trace and the summary's link.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from daca.telemetry import tracing
from tests.engines import Engine
from tests.integration.conftest import run_system
from tests.integration.helpers import eventually

pytestmark = pytest.mark.redis

SAID = "My sister Ottilie lives in Porto."


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracing.provided(provider):
        yield exporter
    provider.shutdown()


def named(found: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in found if span.name == name]


async def test_a_turn_is_one_trace_across_services_and_sidecars(
    spans: InMemorySpanExporter, tmp_path: Path, redis_url: str, engine: Engine
) -> None:
    async with run_system(tmp_path, redis_url, engine) as system:
        body = {"user_id": "ada", "text": SAID, "metadata": {"session_id": "s1"}}
        answer = await system.chat.post("/chat/", json=body)
        assert answer.status_code == 200, answer.text

        async def summarised() -> list[ReadableSpan]:
            return named(list(spans.get_finished_spans()), "summary")

        [summary] = await eventually(summarised)
    finished = list(spans.get_finished_spans())
    [root] = named(finished, "POST /chat/")
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert root.context is not None
    trace_id = root.context.trace_id
    turn = [s for s in finished if s.context is not None and s.context.trace_id == trace_id]
    names = {span.name for span in turn}
    # The chat's own work, and the memory service's, in the same trace.
    assert {"memory read", "agent run", "llm chat"} <= names, names
    assert "GET /memories/{user_id}/context" in names, names

    if engine.name == "daca":
        assert "POST /bulk/conversations" in names, names  # the turn's delivery: the append
        # The sidecars' spans: each invocation and the delivery, parents of the app's spans.
        assert "CallLocal/agent-memory-service/memories/ada/context" in names, names
        [delivery] = named(turn, "pubsub/conversations")
        [append] = named(turn, "POST /bulk/conversations")
        assert append.parent is not None and delivery.context is not None
        assert append.parent.span_id == delivery.context.span_id
        # Connected: every span's parent is a span of the trace.
        ids = {span.context.span_id for span in turn if span.context is not None}
        orphans = [s.name for s in turn if s.parent is not None and s.parent.span_id not in ids]
        assert orphans == [], orphans

    # The summary starts its own trace, linked to the handling of the turn it covers.
    assert summary.context is not None and summary.context.trace_id != trace_id
    [append] = named(finished, "POST /bulk/conversations")
    assert append.context is not None
    assert [link.context.span_id for link in summary.links] == [append.context.span_id]
    summary_trace = [
        s
        for s in finished
        if s.context is not None and s.context.trace_id == summary.context.trace_id
    ]
    assert "llm summary" in {s.name for s in summary_trace}

    # No span carries what the user said (the search query is cut from every URL).
    for span in finished:
        for value in (span.attributes or {}).values():
            assert "Ottilie" not in str(value), (span.name, value)
    [llm] = named(turn, "llm chat")
    assert (llm.attributes or {})["gen_ai.usage.input_tokens"] > 0
