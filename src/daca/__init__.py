"""daca: an event-driven chat agent with long-term memory on Dapr, and a Dapr-compatible runtime."""

__version__ = "0.1.0"
