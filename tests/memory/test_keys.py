"""State keys: every record has its own key, whatever the ids (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daca.contracts.ids import IDENTIFIER_PATTERN
from daca.memory import keys

ids = st.from_regex(IDENTIFIER_PATTERN, fullmatch=True)
# Any text at all, to show that nothing but a valid id gets into a key.
anything = st.text(max_size=140)

records = st.one_of(
    st.tuples(st.just("user"), ids),
    st.tuples(st.just("pending"), ids),
    st.tuples(st.just("session"), ids),
    st.tuples(st.just("page"), ids, st.integers(min_value=0, max_value=10**9).map(str)),
    st.tuples(st.just("turn"), ids, ids),
    st.tuples(st.just("log"), ids),
    st.tuples(st.just("facts"), ids),
    st.tuples(st.just("log-page"), ids, st.integers(min_value=0, max_value=10**9).map(str)),
)


def key_of(record: tuple[str, ...]) -> str:
    kind, *args = record
    if kind == "user":
        return keys.user_key(args[0])
    if kind == "pending":
        return keys.pending_key(args[0])
    if kind == "session":
        return keys.head_key(args[0])
    if kind == "page":
        return keys.page_key(args[0], int(args[1]))
    if kind == "log":
        return keys.log_head_key(args[0])
    if kind == "facts":
        return keys.facts_key(args[0])
    if kind == "log-page":
        return keys.log_page_key(args[0], int(args[1]))
    return keys.marker_key(args[0], args[1])


@given(records)
def test_a_key_names_exactly_its_record(record: tuple[str, ...]) -> None:
    key = key_of(record)
    assert keys.parse_key(key) == record
    assert "||" not in key  # Dapr's key-prefix separator


@given(records, records)
def test_different_records_never_share_a_key(
    first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    if first != second:
        assert key_of(first) != key_of(second)


def test_the_reported_collision_is_impossible() -> None:
    # Session "x:page:0" would have been page 0 of session "x"; such an id is refused.
    with pytest.raises(ValueError, match="letters, digits"):
        keys.head_key("x:page:0")
    assert keys.page_key("x", 0) != keys.head_key("x-page-0")


@given(anything)
def test_only_valid_ids_make_keys(text: str) -> None:
    import re

    valid = re.fullmatch(IDENTIFIER_PATTERN, text) is not None
    try:
        keys.user_key(text)
    except ValueError:
        assert not valid
    else:
        assert valid
