"""How stored values are embedded in a bulk answer (``daca.runtime.gojson.raw_json``): the same
text whether or not a large value was embedded before, JSON or not, and within the cache's
budget."""

from __future__ import annotations

import json

from daca.runtime.gojson import EMBED_CACHE_MIN_BYTES, _EmbedCache, raw_json


def _large(words: str) -> bytes:
    value = {"turns": [{"text": f"{words} <{n}> & more"} for n in range(200)]}
    encoded = json.dumps(value, separators=(",", ":")).encode()
    assert len(encoded) > EMBED_CACHE_MIN_BYTES
    return encoded


def test_a_large_value_embeds_the_same_each_time_and_a_changed_one_anew() -> None:
    value = _large("hello")
    first, again = raw_json(value), raw_json(bytes(value))
    assert first == again
    assert "\\u003c0\\u003e \\u0026 more" in first  # escaped as Go escapes a raw message
    assert json.loads(first) == json.loads(value)
    changed = raw_json(_large("bye"))
    assert json.loads(changed)["turns"][0]["text"] == "bye <0> & more"


def test_a_large_value_that_is_not_json_is_a_string_each_time() -> None:
    value = b"not json " * (EMBED_CACHE_MIN_BYTES // 4)
    for _ in range(2):
        assert json.loads(raw_json(value)) == value.decode()
    small = b"{broken"
    assert json.loads(raw_json(small)) == "{broken"


def test_the_cache_keeps_within_its_budget_and_drops_the_least_recently_used() -> None:
    cache = _EmbedCache(budget=30)
    cache.put(b"a", "x" * 10)
    cache.put(b"b", "y" * 10)
    cache.put(b"c", "z" * 10)
    assert cache.get(b"a") == "x" * 10  # now the most recently used
    cache.put(b"d", "w" * 10)
    assert cache.size == 30
    assert cache.get(b"b") is None
    assert [cache.get(k) for k in (b"a", b"c", b"d")] == ["x" * 10, "z" * 10, "w" * 10]
    cache.put(b"e", "v" * 31)  # larger than the whole budget: not kept
    assert cache.get(b"e") is None and cache.size == 30
