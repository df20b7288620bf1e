"""Replaying dead letters: each kept event that is a valid ``conversations`` event again goes
back to the topic, as the same CloudEvent (same ``id``), and leaves the dead-letter store.

Idempotent: a turn is appended once per turn id (an event without one gets a turn id derived
from its CloudEvent id, which the replay keeps), so replaying an event that was in fact stored,
or replaying twice, adds nothing. Events that still do not validate (malformed, or kept only as
a preview because they were too large) are skipped and stay kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from daca.contracts.events import CloudEvent
from daca.dapr.client import DaprClient
from daca.memory.deadletters import DeadLetterStore

logger = logging.getLogger(__name__)

TOPIC = "conversations"


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    skipped: int


def replayable(event: dict[str, Any]) -> bool:
    """Whether ``event`` is a valid conversations event with an id to keep."""
    try:
        envelope = CloudEvent.model_validate(event)
    except ValidationError:
        return False
    return bool(envelope.id)


async def replay(client: DaprClient, store: DeadLetterStore, pubsub: str) -> ReplayResult:
    """Republish every replayable dead letter, then forget the ones republished."""
    events = await store.list()
    done: set[str] = set()
    for event in events:
        if not replayable(event):
            continue
        fresh = {k: v for k, v in event.items() if k not in ("topic", "pubsubname")}
        await client.publish_cloudevent(pubsub, TOPIC, fresh)
        done.add(str(event["id"]))
    await store.remove(done)
    logger.info("replayed %d dead letters, %d skipped", len(done), len(events) - len(done))
    return ReplayResult(replayed=len(done), skipped=len(events) - len(done))
