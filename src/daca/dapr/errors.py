"""Errors raised by the Dapr sidecar client.

Every transport failure and every non-2xx answer of the sidecar is mapped into this tree at
one boundary (``daca.dapr.client``), chained with ``from`` to the underlying cause::

    DaprClientError
    ├── ConcurrencyExhaustedError      (daca.dapr.retry) ETag conflicts outlasted the attempts
    ├── SidecarUnavailableError        connection refused, timeouts, broken transport
    └── DaprAPIError                   a non-2xx answer: status, errorCode, message
        ├── ETagMismatchError          409 (ERR_STATE_SAVE / ERR_STATE_DELETE)
        ├── StateTransactionError      500 ERR_STATE_TRANSACTION (ETag mismatches included)
        └── InvocationError            500 ERR_DIRECT_INVOKE: target app down or unknown
"""

from __future__ import annotations


class DaprClientError(Exception):
    """Root of every error the Dapr client raises."""


class SidecarUnavailableError(DaprClientError):
    """The sidecar could not be reached, or did not answer in time."""


class DaprAPIError(DaprClientError):
    """The sidecar answered with a non-2xx status."""

    def __init__(self, status: int, error_code: str | None, message: str) -> None:
        super().__init__(f"{status} {error_code or '-'}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


class ETagMismatchError(DaprAPIError):
    """A save or delete lost an optimistic-concurrency race (HTTP 409)."""


class StateTransactionError(DaprAPIError):
    """A state transaction failed (HTTP 500 ``ERR_STATE_TRANSACTION``), ETag mismatches included.

    On Redis-backed daprd the transaction is not atomic: some operations may have been applied.
    """


class InvocationError(DaprAPIError):
    """Service invocation failed before the target answered (``ERR_DIRECT_INVOKE``)."""
