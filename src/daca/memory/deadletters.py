"""Dead letters: the CloudEvents the sidecar gave up on, kept for inspection.

One ``deadletters`` record holds the most recent ``dead_letter_limit`` events, oldest first;
each append is ETag-guarded and retried on conflict, and an event already kept (same
CloudEvent id) is not stored twice. An event larger than ``MAX_DEAD_LETTER_CHARS`` (as JSON)
is kept as its envelope attributes and a preview, so one huge event cannot make the record
(rewritten on every append) huge.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from daca.dapr.client import DaprClient
from daca.dapr.guarded import guarded_write
from daca.dapr.retry import retry_on_conflict
from daca.memory.keys import DEAD_LETTERS_KEY
from daca.memory.records import DeadLetters
from daca.memory.settings import MemorySettings
from daca.memory.statekit import parse

logger = logging.getLogger(__name__)

MAX_DEAD_LETTER_CHARS = 64_000
PREVIEW_CHARS = 1_000
ENVELOPE_ATTRIBUTES = ("id", "source", "type", "specversion", "datacontenttype", "topic",
                       "pubsubname", "time", "traceparent")  # fmt: skip


def bounded(event: dict[str, Any]) -> dict[str, Any]:
    """``event``, or its envelope attributes with a preview of the rest when it is too large."""
    text = json.dumps(event, ensure_ascii=False)
    if len(text) <= MAX_DEAD_LETTER_CHARS:
        return event
    kept = {key: event[key] for key in ENVELOPE_ATTRIBUTES if isinstance(event.get(key), str)}
    return {
        **kept,
        "data": {"truncated": True, "chars": len(text), "preview": text[:PREVIEW_CHARS]},
    }


class DeadLetterStore:
    """Appends to and lists the bounded dead-letter record."""

    def __init__(self, client: DaprClient, settings: MemorySettings) -> None:
        self._client = client
        self._store = settings.state_store
        self._limit = settings.dead_letter_limit
        self._attempts = settings.append_max_attempts

    async def add(self, event: dict[str, Any]) -> bool:
        """Keep ``event``; ``False`` if an event with the same id is already kept."""
        return await retry_on_conflict(
            lambda: self._add_once(event), attempts=self._attempts, what="store dead letter"
        )

    async def list(self) -> list[dict[str, Any]]:
        """The kept events, oldest first."""
        entry = await self._client.get_state(self._store, DEAD_LETTERS_KEY)
        record = parse(DeadLetters, entry) or DeadLetters()
        return record.events

    async def remove(self, ids: set[str]) -> int:
        """Forget the kept events with these CloudEvent ids; how many were removed."""
        return await retry_on_conflict(
            lambda: self._remove_once(ids), attempts=self._attempts, what="remove dead letters"
        )

    async def _remove_once(self, ids: set[str]) -> int:
        entry = await self._client.get_state(self._store, DEAD_LETTERS_KEY)
        record = parse(DeadLetters, entry) or DeadLetters()
        kept = [event for event in record.events if event.get("id") not in ids]
        if len(kept) == len(record.events):
            return 0
        write = guarded_write(DEAD_LETTERS_KEY, DeadLetters(events=kept), entry)
        await self._client.save_state(self._store, [write])
        return len(record.events) - len(kept)

    async def _add_once(self, event: dict[str, Any]) -> bool:
        """One guarded attempt of ``add``."""
        entry = await self._client.get_state(self._store, DEAD_LETTERS_KEY)
        record = parse(DeadLetters, entry) or DeadLetters()
        if event.get("id") is not None and any(e.get("id") == event["id"] for e in record.events):
            return False
        kept = DeadLetters(events=[*record.events, bounded(event)][-self._limit :])
        await self._client.save_state(self._store, [guarded_write(DEAD_LETTERS_KEY, kept, entry)])
        logger.warning("stored dead letter %s (topic %s)", event.get("id"), event.get("topic"))
        return True
