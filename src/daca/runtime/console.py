"""Where a run's app output, status lines and start-up errors go."""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger(__name__)


class Console(Protocol):
    """Where app output, status lines and start-up errors go (the CLI writes to the terminal)."""

    def app_output(self, app_id: str, line: str) -> None: ...
    def status(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...


class LoggingConsole:
    """The default ``Console``: everything through ``logging``."""

    def app_output(self, app_id: str, line: str) -> None:
        logger.info("== APP - %s == %s", app_id, line)

    def status(self, message: str) -> None:
        logger.info("%s", message)

    def error(self, message: str) -> None:
        logger.error("%s", message)
