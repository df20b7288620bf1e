"""Durations as Go's ``time.ParseDuration`` reads them (``5s``, ``1m30s``, ``500ms``, ``-1.5h``)."""

from __future__ import annotations

import re

#: Go's ``time.Duration`` limit, in seconds.
MAX_DURATION = (2**63 - 1) / 1e9
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float:
    """Seconds in ``text`` as Go's ``time.ParseDuration`` reads it; ``ValueError`` otherwise."""
    sign, rest = (-1.0, text[1:]) if text[:1] == "-" else (1.0, text.removeprefix("+"))
    if rest == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(rest):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not rest or pos != len(rest) or total > MAX_DURATION:
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


def parse_duration(text: str, *, bare_unit: float = 1.0) -> float:
    """Seconds in a resource's duration ``text``: a Go duration that is not negative, or a bare
    number multiplied by ``bare_unit`` (seconds per unit).

    Dapr's Redis component reads a bare number as milliseconds: pass ``bare_unit=0.001``.
    Raises ``ValueError`` with the offending text.
    """
    raw = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        return float(raw) * bare_unit
    try:
        seconds = go_duration(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ValueError(f"not a duration: {text!r} (expected e.g. '5s', '500ms', '1m30s')")
    return seconds
