"""Function tools offered to the chat agent."""

from __future__ import annotations

from datetime import UTC, datetime

from agents import function_tool

from daca.telemetry import tracing

CURRENT_TIME_TOOL_NAME = "get_current_time"


def current_utc_time() -> str:
    """The current UTC time as an ISO 8601 string, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@function_tool(name_override=CURRENT_TIME_TOOL_NAME)
def get_current_time() -> str:
    """Return the current date and time in UTC (ISO 8601)."""
    with tracing.tracer(__name__).start_as_current_span(f"tool {CURRENT_TIME_TOOL_NAME}"):
        return current_utc_time()
