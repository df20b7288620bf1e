"""Embeddings for hybrid search, from an OpenAI-compatible ``/embeddings`` endpoint.

Configured by ``EMBEDDINGS_BASE_URL`` and ``EMBEDDINGS_MODEL`` (``EMBEDDINGS_API_KEY`` when the
server needs one): OpenAI, Gemini's OpenAI-compatible endpoint, Ollama, vLLM all serve it.
Unset, search is lexical only. Vectors are computed off the request path, in the summary round
that moves turns into the user's log (one call for the batch's turns and new facts), and stored
beside them as unit-length float16, base64 (``encode``): 2 bytes a dimension. A search embeds
its query (one call) and fuses the lexical and the vector ranking (``daca.memory.recall``).
An embedding failure never fails a summary or a search: the turns are stored without vectors
and the search is lexical, with a warning.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import struct
import time
from collections.abc import Sequence
from typing import Protocol

import httpx

from daca.telemetry.metrics import LLMMetrics

logger = logging.getLogger(__name__)


class EmbeddingError(Exception):
    """The embeddings endpoint failed or answered something unusable."""


class Embedder(Protocol):
    """Turns texts into vectors (one per text, in order)."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """The vectors of ``texts``; raises ``EmbeddingError``."""

    async def aclose(self) -> None:
        """Release the client."""


#: Texts per embeddings request: a summary round can cover 100 turns and their facts, and one
#: request for all of them can outlast the timeout on a small local server.
BATCH = 32


class OpenAIEmbedder:
    """``POST {base_url}/embeddings`` with ``{"model", "input": [...]}``, ``BATCH`` texts a
    request."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: LLMMetrics | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout,
            transport=transport, trust_env=False,
        )  # fmt: skip
        self._model = model
        self._metrics = metrics

    def describe(self) -> str:
        """The model and endpoint, for the start-up log (no key)."""
        return f"embeddings model {self._model} at {self._client.base_url}"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """The vectors of ``texts`` (an empty text embeds as a space)."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors += await self._embed_batch(texts[start : start + BATCH])
        return vectors

    async def _embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One request, counted in the metrics (purpose ``embedding``) when there are some."""
        started, outcome, tokens = time.perf_counter(), "error", 0
        try:
            vectors, tokens = await self._request(texts)
            outcome = "ok"
            return vectors
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            if self._metrics is not None:
                seconds = time.perf_counter() - started
                self._metrics.observe(
                    "embedding", outcome, seconds, input_tokens=tokens, output_tokens=0
                )

    async def _request(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """The vectors of ``texts`` and the tokens the endpoint reports (0 if it does not)."""
        body = {"model": self._model, "input": [text or " " for text in texts]}
        try:
            response = await self._client.post("embeddings", json=body)
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embeddings endpoint unreachable: {type(exc).__name__}") from exc
        if not response.is_success:
            raise EmbeddingError(f"embeddings endpoint answered {response.status_code}")
        try:
            payload = response.json()
            data = sorted(payload["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError("embeddings endpoint answered an unreadable body") from exc
        if len(vectors) != len(texts) or any(not v for v in vectors):
            raise EmbeddingError("embeddings endpoint answered the wrong number of vectors")
        usage = payload.get("usage")
        tokens = usage.get("prompt_tokens", 0) if isinstance(usage, dict) else 0
        return vectors, tokens if isinstance(tokens, int) else 0

    async def aclose(self) -> None:
        await self._client.aclose()


async def embed_or_none(embedder: Embedder | None, texts: Sequence[str]) -> list[str | None]:
    """The encoded vectors of ``texts``, or ``None`` for each when there is no embedder or it
    fails (logged)."""
    if embedder is None or not texts:
        return [None] * len(texts)
    try:
        return [encode(vector) for vector in await embedder.embed(texts)]
    except EmbeddingError as exc:
        logger.warning("embedding %d texts failed: %s; stored without vectors", len(texts), exc)
        return [None] * len(texts)


def encode(vector: Sequence[float]) -> str:
    """``vector`` scaled to unit length, as little-endian float16, base64."""
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return base64.b64encode(struct.pack(f"<{len(vector)}e", *(x / norm for x in vector))).decode()


def decode(encoded: str) -> list[float]:
    """The vector ``encode`` wrote."""
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 2}e", raw))


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of two unit vectors (0 when their sizes differ: another model wrote one)."""
    if len(a) != len(b):
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True))
