"""Wire models shared by the chat and memory services (pydantic v2, no FastAPI)."""

from daca.contracts.events import (
    CloudEvent,
    ConversationEvent,
    ConversationUpdated,
    RawCloudEvent,
    UserRegistered,
)
from daca.contracts.ids import Identifier, validate_identifier
from daca.contracts.models import (
    ConversationEntry,
    ConversationHistory,
    ConversationTurn,
    Timestamp,
    UserMetadata,
    utc_now_iso,
)

__all__ = [
    "CloudEvent",
    "ConversationEntry",
    "ConversationEvent",
    "ConversationHistory",
    "ConversationTurn",
    "ConversationUpdated",
    "Identifier",
    "RawCloudEvent",
    "Timestamp",
    "UserMetadata",
    "UserRegistered",
    "utc_now_iso",
    "validate_identifier",
]
