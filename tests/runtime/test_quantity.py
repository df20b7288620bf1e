"""Byte quantities as daprd reads ``--max-body-size`` (Kubernetes resource quantities)."""

from __future__ import annotations

import pytest

from daca.runtime.quantity import QuantityError, parse_byte_quantity


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4Mi", 4 << 20),
        ("4194304", 4 << 20),
        ("+2Ki", 2048),
        ("1.Ki", 1024),  # Kubernetes accepts a point with no digits after it
        ("1Gi", 1 << 30),
        ("1.5k", 1500),
        ("1.50k", 1500),
        ("1e3", 1000),
        ("1E6", 10**6),
        ("0", 0),
        ("0Mi", 0),
        ("0.0", 0),
        ("-1Mi", -(1 << 20)),  # daprd takes it: no limit
    ],
)
def test_quantities_daprd_reads_as_bytes(text: str, size: int) -> None:
    assert parse_byte_quantity(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.5Ki", "cannot get bytes from resource quantity value '1.5Ki'"),  # an inexact amount
        ("0.5", "cannot get bytes from resource quantity value"),
        ("4.0", "cannot get bytes from resource quantity value"),
        ("100m", "cannot get bytes from resource quantity value"),
        ("8Ei", "cannot get bytes from resource quantity value"),  # beyond int64
        ("4Mm", "unable to parse quantity's suffix"),
        ("4iM", "unable to parse quantity's suffix"),
        ("12x", "quantities must match the regular expression"),
        ("4MB", "quantities must match the regular expression"),
        ("", "quantities must match the regular expression"),
        ("Mi", "quantities must match the regular expression"),
        ("4 Mi", "quantities must match the regular expression"),
    ],
)
def test_quantities_daprd_refuses(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message.replace("(", r"\(")):
        parse_byte_quantity(text)
