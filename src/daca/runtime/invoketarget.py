"""Where an invocation goes: the app-id and method daprd finds in its path and headers.

The ``dapr-app-id`` header, HTTP Basic auth with the user ``dapr-app-id``, then
``/v1.0/invoke/{app-id}/method/{method}``; paths are cleaned as Go's ``path.Clean`` cleans them
and methods as daprd's ``NormalizeMethod`` does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from daca.runtime.gofmt import go_quote
from daca.runtime.headers import APP_ID_HEADER


def go_clean(path: str) -> str:
    """``path`` as Go's ``path.Clean`` returns it (daprd routes on, and invokes, clean paths)."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append(part)
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _after_prefix(path: str, *prefix: str) -> int:
    """Where ``path`` goes on after the segments ``prefix`` (empty segments skipped), or -1."""
    found, start = 0, 0
    for i, char in enumerate(path):
        if char != "/":
            if found >= len(prefix):
                return i
            continue
        if i > start:
            if path[start:i] != prefix[found]:
                return -1
            found += 1
        start = i + 1
    return len(path) if found >= len(prefix) else -1


def find_target_and_method(path: str, headers: Mapping[str, str]) -> tuple[str, str]:
    """The app-id and method of an invocation, looked for where daprd looks, in its order.

    The ``dapr-app-id`` header (the whole path is the method), HTTP Basic auth with the user
    ``dapr-app-id`` and the app-id as password, then ``/v1.0/invoke/{app-id}/method/{method}``.
    ``("", "")`` when none gives an app-id.
    """
    whole_path = go_clean(path).removeprefix("/")
    if app_id := headers.get(APP_ID_HEADER, ""):
        return app_id, whole_path
    auth = headers.get("authorization", "")
    if auth.startswith("Basic "):
        try:
            pair = base64.b64decode(auth.removeprefix("Basic "), validate=True).decode().split(":")
        except (binascii.Error, UnicodeDecodeError):
            pair = []
        if len(pair) == 2 and pair[0].lower() == APP_ID_HEADER:
            return pair[1], whole_path
    index = _after_prefix(path, "v1.0", "invoke")
    if index > 0:
        rest = path[index:]
        split = rest.find("/method/")
        if split > 0:
            method = go_clean(rest[split + len("/method/") :])
            return rest[:split], "" if method == "." else method
    return "", ""


def normalize_method(method: str) -> str:
    """The method as daprd's ``NormalizeMethod`` leaves it; ``ValueError`` when it refuses it.

    ``#``, ``?``, NUL and control characters are refused; ``..`` cannot climb above the root.
    """
    if any(char in method for char in "#?\x00"):
        raise ValueError(f"method contains forbidden character: {go_quote(method)}")
    for position, byte in enumerate(method.encode()):
        if byte < 0x20 or byte == 0x7F:
            raise ValueError(
                f"method contains control character at position {position}: {go_quote(method)}"
            )
    cleaned = go_clean(method)
    while cleaned.startswith("../"):
        cleaned = cleaned[3:]
    return "" if cleaned in ("..", ".") else cleaned
