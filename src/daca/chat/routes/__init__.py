"""The chat service's routers, one per resource."""
