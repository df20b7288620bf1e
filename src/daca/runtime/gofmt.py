"""Go's ``fmt`` and ``strconv`` where daprd's answers show them: ``%v`` of decoded JSON, ``%q``
of a string, ``strconv.ParseBool``."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from daca.runtime.godecode import is_number, number_text


def go_v(value: Any) -> str:
    """``value`` (decoded into ``interface{}``) as Go's ``%v`` prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return go_float(float(number_text(value)))
    parts: list[str] = []  # loops, not generators: one frame per nesting level
    if isinstance(value, list):
        for item in value:
            parts.append(go_v(item))
        return "[" + " ".join(parts) + "]"
    if isinstance(value, dict):
        for key, item in sorted(value.items()):
            parts.append(f"{key}:{go_v(item)}")
        return "map[" + " ".join(parts) + "]"
    return str(value)


def go_float(number: float) -> str:
    """``%v`` (``%g``) of a float64: the shortest digits, in exponent form below 1e-4 or from
    1e6; ``NaN``, ``+Inf`` and ``-Inf`` as Go writes them."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign = "-" if number < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    assert isinstance(exponent, int)
    all_digits = "".join(map(str, digit_tuple))
    digits = all_digits.rstrip("0")
    point = len(all_digits) + exponent  # digits before the decimal point
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_QUOTE_ESCAPES |= {"\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` prints it (for the common characters)."""
    quoted = (
        _QUOTE_ESCAPES.get(char)
        or (f"\\x{ord(char):02x}" if ord(char) < 0x20 or char == "\x7f" else char)
        for char in text
    )
    return '"' + "".join(quoted) + '"'


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(raw: str) -> bool:
    """``raw`` as Go's ``strconv.ParseBool`` reads it (daprd reads ``rawPayload`` with it)."""
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean (1, t, true, 0, f, false, ...)")
