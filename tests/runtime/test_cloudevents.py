"""Envelope details that follow Go's formatting and parsing, as daprd's do."""

from __future__ import annotations

import re
import time

import pytest

from daca.runtime.cloudevents import new_envelope
from daca.runtime.gofmt import parse_go_bool


@pytest.mark.parametrize("raw", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true(raw: str) -> None:
    assert parse_go_bool(raw) is True


@pytest.mark.parametrize("raw", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false(raw: str) -> None:
    assert parse_go_bool(raw) is False


@pytest.mark.parametrize("raw", ["tRuE", "yes", "", "2"])
def test_go_rejects(raw: str) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_go_bool(raw)


@pytest.mark.parametrize(("zone", "suffix"), [("UTC", "Z"), ("EST+05", "-05:00")])
def test_time_is_rfc3339_seconds_with_z_for_utc(
    monkeypatch: pytest.MonkeyPatch, zone: str, suffix: str
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        envelope = new_envelope(
            b"{}",
            content_type=None,
            source="a",
            topic="t",
            pubsub="p",
            traceparent="",
            ttl_seconds=60,
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" + re.escape(suffix), envelope["time"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", envelope["expiration"])
