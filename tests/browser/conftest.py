"""The browser layer: Playwright for Python driving Debian's Chromium against the whole system.

Playwright's own browser download does not work here, so the tests launch the system's
Chromium (``DACA_CHROMIUM``, else ``/usr/bin/chromium``; ``bash scripts/test`` installs it with
apt-get where it can). Without it the tests are skipped, loudly; with ``DACA_REQUIRE_BROWSER``
set (CI) they fail instead. Each test gets a fresh, empty profile, and the browser is launched
with no background networking, so it sends nothing off this machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, async_playwright, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Waits for the page (a summary lands after its debounce; a slow CI machine needs more).
expect.set_options(timeout=15_000)

DESKTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def find_chromium() -> Path | None:
    """The Chromium binary the tests drive, if this machine has one."""
    named = os.environ.get("DACA_CHROMIUM")
    if named:
        return Path(named)
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def chromium() -> Path:
    binary = find_chromium()
    if binary is None or not binary.exists():
        message = (
            "Chromium NOT FOUND - the browser tests are SKIPPED. Install it with "
            "`apt-get install -y chromium` (`bash scripts/test` does, as root) or set "
            "DACA_CHROMIUM."
        )
        if os.environ.get("DACA_REQUIRE_BROWSER"):
            pytest.fail(message.replace("SKIPPED", "required (DACA_REQUIRE_BROWSER)"))
        pytest.skip(message)
    return binary


@pytest_asyncio.fixture
async def browser(chromium: Path, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A fresh Chromium profile, desktop-sized."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=DESKTOP,
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the tests save their screenshots (``test-artifacts/browser``, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
