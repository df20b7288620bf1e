"""Errors of the memory service's logic.

::

    MemoryServiceError
    ├── CorruptRecordError          a stored record does not parse as what its key holds
    └── TurnConflictError           a turn id already stored with other content

Dapr client errors (``daca.dapr.errors``, and ``daca.dapr.retry.ConcurrencyExhaustedError``
when ETag conflicts outlast the allowed attempts) pass through unchanged; the HTTP layer maps
``SidecarUnavailableError`` to 503, and the subscriber maps transient failures to RETRY and
the two permanent ones (``PERMANENT``) to DROP, so the event is dead-lettered and kept.
"""

from __future__ import annotations


class MemoryServiceError(Exception):
    """Root of the memory service's own errors."""


class CorruptRecordError(MemoryServiceError):
    """A stored record cannot be read as the model its key holds; it is left as it is."""

    def __init__(self, key: str, model: str) -> None:
        super().__init__(
            f"stored record {key!r} is unreadable as {model}: it was written by something "
            "else or is damaged; the memory service leaves it untouched"
        )
        self.key = key


class TurnConflictError(MemoryServiceError):
    """An event reuses a stored turn's id with different content."""

    def __init__(self, session_id: str, turn_id: str) -> None:
        super().__init__(
            f"turn {turn_id!r} of session {session_id!r} is already stored with other content"
        )


PERMANENT: tuple[type[MemoryServiceError], ...] = (CorruptRecordError, TurnConflictError)
"""Errors that retrying the same event cannot fix."""
