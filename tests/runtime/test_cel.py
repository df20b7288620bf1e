"""The CEL subset used by subscription route rules: truth tables and rejections."""

from __future__ import annotations

from typing import Any

import pytest

from daca.runtime.cel import SUPPORTED, UnsupportedExpressionError, compile_match

EVENT: dict[str, Any] = {
    "id": "1",
    "type": "order.created",
    "source": "shop",
    "data": {
        "kind": "widget",
        "count": 3,
        "price": 2.5,
        "urgent": True,
        "archived": False,
        "note": None,
        "label": 'say "hi"\n',
        "nested": {"deep": {"value": "x"}},
    },
}


def matches(expr: str, event: dict[str, Any] = EVENT) -> bool:
    return compile_match(expr)(event)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('event.type == "order.created"', True),
        ("event.type == 'order.created'", True),
        ('event.type != "order.created"', False),
        ('event.type == "other"', False),
        ('event.data.kind == "widget"', True),
        ('event.data.nested.deep.value == "x"', True),
        ("event.data.count == 3", True),
        ("event.data.count == 3.0", True),
        ("event.data.count != 4", True),
        ("event.data.price == 2.5", True),
        ("event.data.price == 25e-1", True),
        ("event.data.urgent == true", True),
        ("event.data.archived == false", True),
        ("event.data.note == null", True),
        ("event.data.count == -3", False),
        ("-3 == -3", True),
        ('event.data.count == "3"', False),
        ("event.data.urgent == 1", False),
    ],
)
def test_comparisons(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("true && true", True),
        ("true && false", False),
        ("false || true", True),
        ("false || false", False),
        ("!false", True),
        ("!true", False),
        ("!!true", True),
        # && binds tighter than ||
        ("true || false && false", True),
        ("false && false || true", True),
        ("(true || false) && false", False),
        ("false && (false || true)", False),
        # ! binds tighter than ==
        ("!false == true", True),
        ("!(false == true)", True),
        ('!(event.type == "x") && event.data.urgent', True),
    ],
)
def test_boolean_operators_and_precedence(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("event.data.urgent", True),
        ("event.data.archived", False),
        ("!event.data.archived", True),
        ("event.data.kind", False),  # a string is not a boolean
        ("event.data.count", False),
    ],
)
def test_bare_boolean_fields(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('event.missing == "x"', False),
        ('event.missing != "x"', False),
        ('event.data.kind.sub == "x"', False),  # field of a string
        ("event.data.nothing", False),
        ("!event.data.nothing", False),
        ('event.missing == "x" || event.data.urgent', True),  # true absorbs the error
        ('event.data.urgent || event.missing == "x"', True),
        ('event.missing == "x" && event.data.archived', False),  # false absorbs the error
        ('event.missing == "x" || event.data.archived', False),
        ('event.missing == "x" && event.data.urgent', False),
    ],
)
def test_missing_fields_never_raise_and_do_not_match(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


def test_data_that_is_not_a_mapping() -> None:
    event = {"type": "t", "data": "plain text"}
    assert matches('event.data.kind == "x"', event) is False
    assert matches('event.type == "t"', event) is True


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (r'event.data.label == "say \"hi\"\n"', True),
        (r"event.data.label == 'say \"hi\"\n'", True),
        (r"event.data.label == 'say \'hi\'\n'", False),
        (r'"\x41\u00e9\101\\" == "Aé" + ""', None),  # '+' is rejected, see below
        (r'"\x41\u00e9\101\\" == "AéA\\"', True),
        (r'"tab\there" == "tab	here"', True),
    ],
)
def test_string_escapes(expr: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(UnsupportedExpressionError):
            compile_match(expr)
    else:
        assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("size(event.data) > 1", "'>'"),
        ("size(event.type) == 1", "function and method calls"),
        ('event.type in ["a", "b"]', "'['"),
        ("event.type in x", "unexpected 'in'"),
        ("event.data.count < 1", "'<'"),
        ("event.data.count + 1 == 2", "'+'"),
        ("event.data.count - 1 == 2", "unexpected '-'"),
        ('event.type.startsWith("a")', "function and method calls"),
        ("event.data.all(x, x == 1)", "','"),
        ("event.data.exists(x)", "function and method calls"),
        ('request.type == "a"', "unknown identifier 'request'"),
        ('(event.type == "a"', "missing closing parenthesis"),
        ('event.type == "a")', "unexpected ')'"),
        ("event.type ==", "ends unexpectedly"),
        ("", "empty"),
        (r'event.type == "\q"', "invalid escape"),
        ('event.type == "unterminated', "'\"'"),
        ("event. == 1", "field name"),
    ],
)
def test_unsupported_expressions_are_rejected(expr: str, problem: str) -> None:
    with pytest.raises(UnsupportedExpressionError) as info:
        compile_match(expr)
    message = str(info.value)
    assert repr(expr) in message
    assert problem in message
    assert SUPPORTED in message
    assert info.value.expression == expr


def test_error_is_a_value_error() -> None:
    assert issubclass(UnsupportedExpressionError, ValueError)


def test_whitespace_is_ignored() -> None:
    assert matches('  event.type=="order.created"&&(  event.data.urgent )  ') is True
