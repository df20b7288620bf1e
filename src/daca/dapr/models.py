"""Typed request and response items of the Dapr state API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class StateEntry(BaseModel):
    """A stored value (parsed JSON) and its ETag."""

    key: str
    value: Any = None
    etag: str | None = None


class StateWrite(BaseModel):
    """One item of a save request, or the request of a transaction operation."""

    key: str = Field(min_length=1)
    value: Any = None
    etag: str | None = None
    concurrency: Literal["first-write", "last-write"] | None = None
    metadata: dict[str, str] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The item as the sidecar expects it (a model value is serialised when the request is)."""
        item: dict[str, Any] = {"key": self.key, "value": self.value}
        if self.etag is not None:
            item["etag"] = self.etag
        if self.concurrency is not None:
            item["options"] = {"concurrency": self.concurrency}
        if self.metadata:
            item["metadata"] = self.metadata
        return item


class StateOperation(BaseModel):
    """One operation of a state transaction."""

    operation: Literal["upsert", "delete"]
    request: StateWrite

    def to_wire(self) -> dict[str, Any]:
        """The operation as the sidecar expects it."""
        request = self.request.to_wire()
        if self.operation == "delete":
            request.pop("value", None)
        return {"operation": self.operation, "request": request}
