"""Hybrid search with embeddings from an OpenAI-compatible endpoint (the fake server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from daca.memory.embeddings import BATCH, decode, encode, similarity
from tests.fakes.openai_server import FakeOpenAIServer
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import (
    FakeWriter,
    conversation,
    deliver,
    envelope,
    memory_settings,
    running_app,
    wait_for,
)

KICKBOXING = "I started kickboxing classes last month."
QUESTION = "Which martial arts does she practise?"


@pytest.fixture
def embeddings() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.concepts = {w: "martial" for w in ("kickboxing", "taekwondo", "martial", "arts")}
        yield server


def said(text: str, turn: str) -> dict[str, Any]:
    event = conversation(turn=turn)
    event.update(user_message=text, assistant_reply="Nice.")
    return envelope(event)


async def search(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    answer = await client.get("/memories/alice/search", params={"q": query, "k": 3})
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def test_vectors_are_stored_small_and_compare_by_cosine() -> None:
    encoded = encode([3.0, 4.0])
    assert len(encoded) == 8  # two float16: 4 bytes in base64
    assert decode(encoded) == pytest.approx([0.6, 0.8], abs=1e-3)
    assert similarity(decode(encode([1, 0])), decode(encode([0, 2]))) == 0
    assert similarity([1.0], [1.0, 0.0]) == 0  # another model's vector


async def test_a_memory_sharing_no_word_with_the_query_is_found_through_embeddings(
    sidecar: FakeSidecar, writer: FakeWriter, embeddings: FakeOpenAIServer
) -> None:
    lexical = memory_settings()
    hybrid = memory_settings(
        EMBEDDINGS_BASE_URL=embeddings.base_url, EMBEDDINGS_MODEL="fake-embedder"
    )
    async with running_app(sidecar, writer, hybrid) as client:
        for n, text in enumerate([KICKBOXING, "We painted the fence.", "My mum called."]):
            assert await deliver(client, said(text, f"t{n}")) == "SUCCESS"
        await wait_for(lambda: sidecar.value("pending:alice") == {"turns": []})
        [found, *_] = await search(client, QUESTION)
        assert found["text"] == KICKBOXING
        metrics = (await client.get("/metrics")).text
        assert 'daca_llm_calls_total{outcome="ok",purpose="embedding"} 2.0' in metrics
    # One embeddings call for the batch of turns (the summary round), one per search.
    assert [len(inputs) for inputs in embeddings.embedding_inputs] == [3, 1]
    # A round of more texts than a request carries is sent in several.
    one_round = hybrid.model_copy(
        update={
            "summary_debounce_seconds": 1.0,
            "summary_max_delay_seconds": 10.0,
            "summary_max_pending_turns": 100,
        }
    )
    async with running_app(sidecar, writer, one_round) as client:
        for n in range(40):
            assert await deliver(client, said(f"Note {n}.", f"n{n}")) == "SUCCESS"
        await wait_for(lambda: sidecar.value("pending:alice") == {"turns": []}, timeout=15)
    assert max(len(inputs) for inputs in embeddings.embedding_inputs) == BATCH
    assert embeddings.embedding_inputs[0][0] == f"{KICKBOXING}\nNice."
    async with running_app(sidecar, writer, lexical) as client:
        assert await search(client, QUESTION) == []


async def test_an_embeddings_failure_stores_the_turns_and_searches_lexically(
    sidecar: FakeSidecar, writer: FakeWriter, embeddings: FakeOpenAIServer
) -> None:
    settings = memory_settings(
        EMBEDDINGS_BASE_URL=embeddings.base_url, EMBEDDINGS_MODEL="fake-embedder"
    )
    embeddings.embedding_failures = 10
    async with running_app(sidecar, writer, settings) as client:
        assert await deliver(client, said(KICKBOXING, "t1")) == "SUCCESS"
        await wait_for(lambda: sidecar.value("pending:alice") == {"turns": []})
        [logged] = sidecar.value("log:alice:page:0")["turns"]
        assert logged["embedding"] is None
        [found] = await search(client, "kickboxing")
        assert found["text"] == KICKBOXING
        metrics = (await client.get("/metrics")).text
        # The summary round's call failed; with no vectors stored, search embeds nothing.
        assert 'daca_llm_calls_total{outcome="error",purpose="embedding"} 1.0' in metrics


def test_an_embeddings_endpoint_needs_a_model() -> None:
    with pytest.raises(ValueError, match="EMBEDDINGS_MODEL"):
        memory_settings(EMBEDDINGS_BASE_URL="http://127.0.0.1:1/v1")
