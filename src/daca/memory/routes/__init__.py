"""One router per resource of the memory service."""
