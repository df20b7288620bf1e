"""Go-style durations as Dapr resources write them (``5s``, ``1m30s``, ``500ms``)."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str, *, bare_unit: float = 1.0) -> float:
    """Seconds in ``text``. A bare number is multiplied by ``bare_unit`` (seconds per unit).

    Dapr's Redis component reads a bare number as milliseconds: pass ``bare_unit=0.001``.
    Raises ``ValueError`` with the offending text.
    """
    raw = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        return float(raw) * bare_unit
    pos, total = 0, 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or not raw:
        raise ValueError(f"not a duration: {text!r} (expected e.g. '5s', '500ms', '1m30s')")
    return total
