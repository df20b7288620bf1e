"""In-process test clients that look like what local mode serves: a loopback client and Host."""

from __future__ import annotations

from typing import Any

#: Keyword arguments for ``TestClient``: Starlette's defaults (client ``testclient``, Host
#: ``testserver``) are, rightly, refused by local mode's guard.
LOCAL: dict[str, Any] = {"base_url": "http://127.0.0.1", "client": ("127.0.0.1", 50000)}
