"""A typed async client for the Dapr sidecar HTTP API (state, publish, invoke, health)."""

from daca.dapr.client import DaprClient
from daca.dapr.errors import (
    DaprAPIError,
    DaprClientError,
    ETagMismatchError,
    InvocationError,
    SidecarUnavailableError,
    StateTransactionError,
)
from daca.dapr.models import StateEntry, StateOperation, StateWrite
from daca.dapr.settings import DaprSettings

__all__ = [
    "DaprAPIError",
    "DaprClient",
    "DaprClientError",
    "DaprSettings",
    "ETagMismatchError",
    "InvocationError",
    "SidecarUnavailableError",
    "StateEntry",
    "StateOperation",
    "StateTransactionError",
    "StateWrite",
]
