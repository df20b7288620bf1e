"""Byte sizes written as Kubernetes resource quantities (``4Mi``, ``512k``, ``1e6``).

daprd reads ``--max-body-size`` with ``resource.ParseQuantity`` and takes the bytes only when the
quantity is a whole number it holds exactly (``getQuantityBytes``): ``1.5k`` is 1500 bytes, but
``1.5Ki`` and ``0.5`` are refused. Zero (and, as in daprd, a negative size) means no limit.
"""

from __future__ import annotations

import re
from decimal import Decimal

_FORMAT = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?([eEinumkKMGTP]*[-+]?\d*)")
_EXPONENT = re.compile(r"[eE][-+]?\d+")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_DIGITS = 18  # what an int64 amount holds; more digits make an inexact (decimal) quantity


class QuantityError(ValueError):
    """Not a quantity of whole bytes; the message is daprd's."""


def parse_byte_quantity(text: str) -> int:
    """The bytes in ``text``, as daprd reads ``--max-body-size``; :class:`QuantityError`."""
    match = _FORMAT.fullmatch(text)
    if not text or match is None or not (match[2] or match[3]):
        raise QuantityError(
            "quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    sign, whole, fraction, suffix = match[1], match[2], match[3] or "", match[4]
    multiplier = _multiplier(suffix)
    value = Decimal(f"{sign}{whole or 0}.{fraction or 0}")
    if value == 0:
        return 0
    if not _exact(whole.lstrip("0") + fraction, fraction, suffix):
        raise QuantityError(f"cannot get bytes from resource quantity value '{text}'")
    return int(value * multiplier)


def _multiplier(suffix: str) -> Decimal:
    if suffix in _BINARY:
        return Decimal(2) ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return Decimal(10) ** _DECIMAL[suffix]
    if _EXPONENT.fullmatch(suffix):
        return Decimal(10) ** int(suffix[1:])
    raise QuantityError("unable to parse quantity's suffix")


def _exact(digits: str, fraction: str, suffix: str) -> bool:
    """Whether daprd holds the quantity as a whole number of bytes (an int64 amount)."""
    if suffix in _BINARY:
        return not fraction and len(digits) < 15 - int(_BINARY[suffix] * 0.3)
    exponent = int(suffix[1:]) if _EXPONENT.fullmatch(suffix) else _DECIMAL[suffix]
    exponent -= len(fraction)
    return len(digits) <= _MAX_DIGITS and exponent >= 0 and len(digits) + exponent <= _MAX_DIGITS
