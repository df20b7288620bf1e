"""JSON text read as Go's ``json.Decoder`` reads it, into Python values.

Only the first JSON value counts (what follows it is ignored), ``NaN`` and ``Infinity`` are no
JSON, invalid UTF-8 reads as U+FFFD. :func:`parse_body` reads a request body for the state API:
Go's ``EOF`` / ``unexpected EOF`` texts, and numbers kept as the digits sent (:class:`Number`).
:func:`first_value` and :func:`whole_value` read into plain Python values, as ``interface{}``.

Nesting is limited as Go's scanner limits it, with its words (``invalid character '[' exceeded
max depth``), but at :data:`MAX_DEPTH` levels instead of Go's 10000: Python's parser and
encoder recurse once per level, and the interpreter allows about 1000 frames (docs/runtime.md).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

#: The deepest nesting of arrays and objects read (Go's ``maxNestingDepth`` is 10000).
MAX_DEPTH = 500
#: What a JSON endpoint answers for a body its reader stopped at the size limit.
TOO_LARGE = "stream too large"
_SPACE = " \t\r\n"
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[{]+|[\]}]+', re.DOTALL)


class Number:
    """A JSON number whose text Python would not write back as it was sent (``1.5e3``, ``-0``,
    ``1E400``): kept as that text (daprd turns every number into a float64)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Number) and not isinstance(value, bool)


def number_text(value: Any) -> str:
    return value.text if isinstance(value, Number) else repr(value)


def clean(text: str) -> str:
    """``text`` with lone surrogates (``"\\ud800"``) replaced by U+FFFD, as Go decodes them."""
    return _SURROGATE.sub("\ufffd", text)


class NestingError(ValueError):
    """Arrays and objects nested deeper than :data:`MAX_DEPTH`, in Go's words."""


class BodyError(Exception):
    """The body is not JSON (daprd's "EOF" and "unexpected EOF", else Python's parser's words)."""


_CONSTANTS = {  # Python's json accepts these; Go's scanner stops at them
    "NaN": "invalid character 'N' looking for beginning of value",
    "Infinity": "invalid character 'I' looking for beginning of value",
    "-Infinity": "invalid character 'I' in numeric literal",
}


def _reject_constant(name: str) -> Any:
    raise BodyError(_CONSTANTS[name])


@dataclass
class Parsed:
    value: Any
    overflow: bool  # a number beyond float64 (an error once its place is known)


def parse_body(body: bytes, *, cut: bool = False) -> Parsed:
    """The first JSON value of ``body``; ``cut``: the body was stopped at the size limit, so a
    value that needs more of it is Go's read error (``stream too large``)."""
    numbers = _NumberReader()
    decoder = json.JSONDecoder(
        parse_float=numbers.float, parse_int=numbers.int, parse_constant=_reject_constant
    )
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(_SPACE))
    if start == len(text):
        raise BodyError(TOO_LARGE if cut else "EOF")
    try:
        value, end = decode_first(decoder, text, start)
    except NestingError as exc:
        raise BodyError(str(exc)) from None
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text) or exc.msg.startswith("Unterminated string"):
            raise BodyError(TOO_LARGE if cut else "unexpected EOF") from None
        raise BodyError(str(exc)) from None
    if cut and end == len(text) and not isinstance(value, list | dict):
        raise BodyError(TOO_LARGE)  # Go reads one byte past a number, string or literal
    return Parsed(value, numbers.overflow)


class _NumberReader:
    """Numbers as Python writes them back where it can, else :class:`Number`."""

    def __init__(self) -> None:
        self.overflow = False

    def float(self, text: str) -> float | Number:
        number = float(text)
        self.overflow = self.overflow or not math.isfinite(number)
        return number if repr(number) == text else Number(text)

    def int(self, text: str) -> int | Number:
        if len(text) < 300 and text != "-0":  # int() has a digit limit; a float64 has one too
            return int(text)
        self.overflow = self.overflow or not math.isfinite(float(text))
        return Number(text)


def _reject_literal(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_literal)


def first_value(raw: bytes | str) -> Any:
    """The first JSON value of ``raw``, as ``json.Decoder.Decode`` reads it into ``interface{}``.

    Whatever follows a complete value is ignored (``{"a": 1} x`` is the object, ``12x`` is 12),
    but a number cut short (``1.``, ``1e``) is an error. Raises ``ValueError``.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    start = len(text) - len(text.lstrip(_SPACE))
    if start == len(text):
        raise ValueError("unexpected end of JSON input")
    value, end = decode_first(_DECODER, text, start)
    if isinstance(value, int | float) and not isinstance(value, bool):
        literal, following = text[start:end], text[end : end + 1]
        cut_fraction = following == "." and not any(c in literal for c in ".eE")
        cut_exponent = following in ("e", "E") and not any(c in literal for c in "eE")
        if cut_fraction or cut_exponent:
            raise ValueError(f"invalid character after {literal!r} in numeric literal")
    return value


def whole_value(raw: bytes) -> Any:
    """``raw`` as one JSON document (nothing but space may follow it); ``ValueError``."""
    text = raw.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(_SPACE))
    value, end = decode_first(_DECODER, text, start)
    if text[end:].strip(_SPACE):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def decode_first(decoder: json.JSONDecoder, text: str, start: int) -> tuple[Any, int]:
    """``decoder.raw_decode(text, start)``, refusing nesting deeper than :data:`MAX_DEPTH` as Go
    does (:class:`NestingError`, unless a syntax error comes first)."""
    try:
        value, end = decoder.raw_decode(text, start)
    except RecursionError:
        raise _nesting_error(decoder, text, start) from None
    except json.JSONDecodeError as exc:
        _check_nesting(text, start, exc.pos)
        raise
    if _count_openers(text, start, end) > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        _check_nesting(text, start, end)
    return value, end


def _count_openers(text: str, start: int, end: int) -> int:
    return text.count("[", start, end) + text.count("{", start, end)


#: A tuple, not ``list | dict``: ``isinstance`` with a union costs twice as much, and this runs
#: for every value of a large body.
_CONTAINERS = (list, dict)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (no recursion)."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    for _ in range(limit):
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if isinstance(child, _CONTAINERS)
        ]
        if not level:
            return False
    return True


def _check_nesting(text: str, start: int, end: int) -> None:
    """:class:`NestingError` when the value at ``start`` nests too deep before ``end``."""
    if _count_openers(text, start, end) > MAX_DEPTH:
        position = _overflow(text, start, end)
        if position is not None:
            raise NestingError(f"invalid character {text[position]!r} exceeded max depth")


def _nesting_error(decoder: json.JSONDecoder, text: str, start: int) -> ValueError:
    """Python's parser ran out of recursion: Go's nesting error, or the syntax error before it."""
    position = _overflow(text, start, len(text))
    if position is None:  # only with a call stack deeper than the limit leaves room for
        return NestingError("invalid character '[' exceeded max depth")
    try:
        decoder.raw_decode(text[:position], start)
    except json.JSONDecodeError as exc:
        if exc.pos < position:
            return exc
    return NestingError(f"invalid character {text[position]!r} exceeded max depth")


def _overflow(text: str, start: int, end: int) -> int | None:
    """Where the value at ``start`` first opens its ``MAX_DEPTH + 1``-th level, if before it
    ends (strings skipped)."""
    depth = 0
    for match in _TOKENS.finditer(text, start, end):
        token = match.group()
        if token[0] in "[{":
            if depth + len(token) > MAX_DEPTH:
                return match.start() + MAX_DEPTH - depth
            depth += len(token)
        elif token[0] != '"':
            depth -= len(token)
            if depth <= 0:
                return None
    return None
