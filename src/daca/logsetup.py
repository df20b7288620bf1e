"""Logging for a service started by uvicorn, which configures only its own loggers.

Called by the services' app factories (their entry points). It does nothing when logging is
already configured (handlers on the root logger, as under pytest or a ``--log-config``).
"""

from __future__ import annotations

import logging
import os

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: Libraries that log every request at INFO. uvicorn's access log also writes each request's
#: query, and a query can hold a user's words (``/memories/{user}/search?q=...``); the
#: services' metrics and traces count and time requests instead.
_QUIET = ("httpx", "httpcore", "openai", "agents", "uvicorn.access")


def configure_service_logging() -> None:
    """Root logging to stderr at ``$LOG_LEVEL`` (default INFO), unless already configured."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
