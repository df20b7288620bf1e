"""User metadata: reads with the tutorial's defaults, initialisation and registration.

Every write is a read-modify-write guarded by the record's ETag (first-write when new) and
retried on conflict, and none of them touches the summary bookkeeping that the summarizer owns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from daca.contracts.events import UserRegistered
from daca.contracts.models import UserMetadata, UserProfile
from daca.dapr.client import DaprClient
from daca.dapr.guarded import guarded_write
from daca.dapr.retry import retry_on_conflict
from daca.memory import keys
from daca.memory.records import PendingTurns
from daca.memory.settings import MemorySettings
from daca.memory.statekit import Entries, parse, read_many

logger = logging.getLogger(__name__)

DEFAULT_STYLE = "casual"
PROFILE_FIELDS = ("name", "preferred_style", "goal", "user_summary")


def with_defaults(user_id: str, metadata: UserMetadata | None) -> UserMetadata:
    """``metadata`` with the tutorial's defaults for a missing name and style."""
    metadata = metadata or UserMetadata()
    return metadata.model_copy(
        update={
            "name": metadata.name or user_id,
            "preferred_style": metadata.preferred_style or DEFAULT_STYLE,
        }
    )


def record_keys(user_id: str) -> list[str]:
    """What reading a user's metadata needs: the record and the pending turns."""
    return [keys.user_key(user_id), keys.pending_key(user_id)]


def metadata_from(user_id: str, read: Entries) -> tuple[UserMetadata, bool]:
    """The user's metadata (defaults filled in) and whether turns await a summary, from the
    ``record_keys`` entries in ``read``."""
    pending = parse(PendingTurns, read[keys.pending_key(user_id)])
    has_pending = pending is not None and bool(pending.turns)
    return with_defaults(user_id, parse(UserMetadata, read[keys.user_key(user_id)])), has_pending


class UserStore:
    """Reads and writes ``user:{user_id}`` records."""

    def __init__(self, client: DaprClient, settings: MemorySettings) -> None:
        self._client = client
        self._store = settings.state_store
        self._attempts = settings.append_max_attempts

    async def get(self, user_id: str) -> tuple[UserMetadata, bool]:
        """The user's metadata (defaults filled in) and whether turns await a summary."""
        read = await read_many(self._client, self._store, record_keys(user_id))
        return metadata_from(user_id, read)

    async def initialize(self, user_id: str, profile: UserProfile) -> UserMetadata:
        """Set the profile fields given in ``profile`` (summary bookkeeping is kept); the result."""
        update = {
            name: getattr(profile, name)
            for name in PROFILE_FIELDS
            if name in profile.model_fields_set
        }
        stored = await retry_on_conflict(
            lambda: self._update(user_id, update, overwrite=True),
            attempts=self._attempts,
            what=f"initialize user {user_id}",
        )
        return with_defaults(user_id, stored)

    async def register(self, event: UserRegistered) -> UserMetadata:
        """Create the user idempotently; an existing record only gains missing fields."""
        update = {"name": event.name, "preferred_style": event.preferred_style}
        return await retry_on_conflict(
            lambda: self._update(event.user_id, update, overwrite=False),
            attempts=self._attempts,
            what=f"register user {event.user_id}",
        )

    async def _update(
        self, user_id: str, update: Mapping[str, object], *, overwrite: bool
    ) -> UserMetadata:
        """One guarded attempt: merge ``update`` into the stored record and save it if changed."""
        key = keys.user_key(user_id)
        entry = await self._client.get_state(self._store, key)
        current = parse(UserMetadata, entry) or UserMetadata()
        merged = current.model_copy(update=_merge(current, update, overwrite=overwrite))
        if entry is None or merged != current:
            await self._client.save_state(self._store, [guarded_write(key, merged, entry)])
            logger.info("stored metadata of user %s", user_id)
        return merged


def _merge(
    current: UserMetadata, update: Mapping[str, object], *, overwrite: bool
) -> dict[str, object]:
    """The fields of ``update`` to apply: all of them, or only those missing in ``current``."""
    if overwrite:
        return dict(update)
    return {
        name: value
        for name, value in update.items()
        if getattr(current, name) is None and value is not None
    }
