"""Putting a service in its access mode: the local guard, or the production checks."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from daca.access.local import LocalOnly
from daca.access.settings import AccessSettings

logger = logging.getLogger(__name__)


def apply_mode(app: FastAPI, settings: AccessSettings, service: str) -> None:
    """Install local mode's guard, or announce production mode (its checks are per route)."""
    if settings.production:
        logger.info("%s: production mode (callers must authenticate)", service)
        return
    app.add_middleware(LocalOnly, extra_hosts=settings.extra_hosts())
    logger.info(
        "%s: local mode: open to this machine only, cross-site requests refused "
        "(DACA_MODE=production to serve others, with authentication)",
        service,
    )
