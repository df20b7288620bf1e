"""Values written as JSON the way daprd's Go encoders write them.

``encoding/json`` (``"std"``): compact, object members sorted, ``<``, ``>``, ``&`` and U+2028/9
escaped. jsoniter's fastest configuration (``"fastest"``, daprd's Redis state store): members in
the order given, nothing escaped but what must be, ``\\b`` and ``\\f`` as ``\\u00XX``. A number
read as :class:`~daca.runtime.godecode.Number` is written as it was sent; lone surrogates are
replaced, as Go's decoder replaced them.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Literal

from daca.runtime.godecode import clean, is_number, number_text

ValueEncoding = Literal["std", "fastest"]

#: What Go's encoding/json escapes that Python's json does not (only ever inside a string).
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_escape(text: str) -> str:
    for char, escaped in _GO_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text


def jsoniter_escapes(text: str) -> str:
    """Python's ``\\b`` and ``\\f`` as jsoniter writes them (``\\u0008``, ``\\u000c``), an
    escaped backslash (``\\\\``) left alone; NUL never occurs raw in :mod:`json`'s output."""
    if "\\b" not in text and "\\f" not in text:
        return text
    text = text.replace("\\\\", "\0").replace("\\b", "\\u0008").replace("\\f", "\\u000c")
    return text.replace("\0", "\\\\")


def go_string(text: str, encoding: ValueEncoding = "std") -> str:
    """``text`` as a JSON string, as ``encoding`` writes it."""
    quoted = json.dumps(text, ensure_ascii=False)
    return go_escape(quoted) if encoding == "std" else jsoniter_escapes(quoted)


def go_json(value: Any, encoding: ValueEncoding = "std") -> str:
    """``value`` as ``encoding`` writes it, a number as sent (one frame per nesting level)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_text(value)
    if isinstance(value, str):
        return go_string(value, encoding)
    parts: list[str] = []
    if isinstance(value, list):
        for item in value:
            parts.append(go_json(item, encoding))
        return "[" + ",".join(parts) + "]"
    for key, item in sorted(value.items()) if encoding == "std" else value.items():
        parts.append(f"{go_string(key, encoding)}:{go_json(item, encoding)}")
    return "{" + ",".join(parts) + "}"


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def encode_value(value: Any, encoding: ValueEncoding) -> bytes:
    """A value to store. :mod:`json` writes it when every number is spelt as Python writes it
    (the usual case), else :func:`go_json`; the same text either way."""
    try:
        text = json.dumps(
            value,
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=encoding == "std",
            allow_nan=False,
            default=_refuse,
        )
    except TypeError:  # a Number
        text = go_json(value, encoding)
    else:
        text = go_escape(text) if encoding == "std" else jsoniter_escapes(text)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return clean(text).encode()


class _EmbedCache:
    """The embedded text of recently read large values, by their bytes, least recently used
    first out once their text passes ``budget`` characters. A value is read far more often than
    it is written (a user's older log pages, by every context read), and checking that it is
    JSON costs a full parse; looking it up costs a hash of its bytes. Keyed by the bytes
    themselves, so a changed value is simply another entry."""

    def __init__(self, budget: int) -> None:
        self._texts: OrderedDict[bytes, str] = OrderedDict()
        self._budget = budget
        self.size = 0  # characters of the texts kept (each about as long as its value)

    def get(self, value: bytes) -> str | None:
        text = self._texts.get(value)
        if text is not None:
            self._texts.move_to_end(value)
        return text

    def put(self, value: bytes, text: str) -> None:
        if value in self._texts or len(text) > self._budget:
            return
        self._texts[value] = text
        self.size += len(text)
        while self.size > self._budget:
            _, dropped = self._texts.popitem(last=False)
            self.size -= len(dropped)


#: Values shorter than this are checked each time (the lookup would cost about as much).
EMBED_CACHE_MIN_BYTES = 2048
_EMBEDDED = _EmbedCache(budget=8 * 1024 * 1024)


def raw_json(value: bytes) -> str:
    """A stored value embedded in an answer, escaped as Go's encoder escapes a raw message; one
    that is not JSON (not written by a sidecar) is embedded as a string rather than breaking
    the answer. Large values are remembered (``_EmbedCache``)."""
    if len(value) < EMBED_CACHE_MIN_BYTES:
        return _embedded(value)
    text = _EMBEDDED.get(value)
    if text is None:
        text = _embedded(value)
        _EMBEDDED.put(value, text)
    return text


def _embedded(value: bytes) -> str:
    text = value.decode("utf-8", errors="replace")
    try:
        json.loads(text)
    except ValueError:
        return go_string(text)
    except RecursionError:  # nested deeper than Python reads: written as JSON all the same
        pass
    return go_escape(text)


def marshal(value: Any) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes it: compact, object keys sorted, HTML-escaped;
    a lone surrogate (decoded from ``"\\ud800"``) as the U+FFFD Go's decoder made of it."""
    text = go_escape(json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return clean(text).encode()
