"""The one logging set-up of every daca process: the CLI (``--log-level``) and the services
(``$LOG_LEVEL``, called by their app factories, since uvicorn configures only its own loggers).

Records go to stderr in one format. Libraries that log every request at INFO are kept at
WARNING: uvicorn's access log also writes each request's query, and a query can hold a user's
words (``/memories/{user}/search?q=...``); the services' metrics and traces count and time
requests instead. stamina logs each retry it schedules at WARNING; the project's call sites
log their own retries, with what is retried, so its logger is kept at ERROR.
"""

from __future__ import annotations

import logging
import os
import sys

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_QUIET = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "openai": logging.WARNING,
    "agents": logging.WARNING,
    "uvicorn.access": logging.WARNING,
    "stamina": logging.ERROR,
}


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (like ``lastResort``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: str | None = None) -> None:
    """Root logging to stderr at ``level`` (debug, info, warn, error), once per process.

    Without ``level`` (a service) it is ``$LOG_LEVEL`` (default INFO), and nothing changes when
    something else already configured the root logger (pytest, uvicorn's ``--log-config``).
    """
    root = logging.getLogger()
    ours = any(isinstance(handler, _StderrHandler) for handler in root.handlers)
    if level is None:
        if root.handlers:
            return
        level = os.environ.get("LOG_LEVEL", "INFO")
    if not ours:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(LOG_LEVELS.get(level.lower(), logging.INFO))
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(quiet)
