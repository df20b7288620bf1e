"""``GET /ui``: the chat page; ``GET /me``: the access mode and who the caller is.

The page is static (``daca/chat/ui``): an HTML document, one script and one stylesheet, all
served from here, so it works on a machine with no network. Its Content-Security-Policy allows
nothing but this origin, which keeps a stored message or fact from ever running as script.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from daca.chat.deps import Caller, Chat
from daca.chat.models import Identity
from daca.chat.openapi import ME_RESPONSES

UI_DIR = Path(__file__).resolve().parents[1] / "ui"

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["service"])


@router.get("/me", response_model=Identity, responses=ME_RESPONSES)
async def me(service: Chat, caller: Caller) -> Identity:
    """The service's access mode and, in production mode, the user the bearer token proves
    (401 without a valid one): what the page asks before it shows a user or a token field."""
    return service.identity(caller)


@router.get("/ui", include_in_schema=False)
async def page() -> FileResponse:
    """The chat page."""
    return FileResponse(UI_DIR / "index.html", headers=PAGE_HEADERS)


def assets() -> StaticFiles:
    """The page's script and stylesheet, mounted at ``/ui/assets``."""
    return StaticFiles(directory=UI_DIR / "assets")
