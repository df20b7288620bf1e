"""Errors of the memory service's logic.

::

    MemoryServiceError
    └── ConcurrencyExhaustedError   ETag conflicts outlasted the allowed attempts

Dapr client errors (``daca.dapr.errors``) pass through unchanged; the HTTP layer maps
``SidecarUnavailableError`` to 503, and the subscriber maps transient failures to RETRY.
"""

from __future__ import annotations


class MemoryServiceError(Exception):
    """Root of the memory service's own errors."""


class ConcurrencyExhaustedError(MemoryServiceError):
    """An optimistic-concurrency update kept conflicting; the caller may retry later."""
