"""Subscription match expressions on cel-python, held to what daprd 1.18.2 (cel-go v0.20.1) does.

Every expected value here is cel-go's, for the event below as daprd decodes it (JSON numbers
become doubles): true/false, or an evaluation error (:class:`MatchError`, for which daprd routes
the event nowhere), or a load error (:class:`UnsupportedExpressionError`).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from daca.runtime.cel import MatchError, UnsupportedExpressionError, cel_event, compile_match
from daca.runtime.resources import RouteRule, SubscriptionSpec
from daca.runtime.subscriptions import Router

EVENT: dict[str, Any] = {
    "id": "1",
    "type": "order.created",
    "source": "shop",
    "time": "2024-05-01T10:00:00Z",
    "data": {
        "kind": "widget",
        "count": 3,
        "price": 2.5,
        "urgent": True,
        "archived": False,
        "note": None,
        "label": 'say "hi"\n',
        "tags": ["a", "b"],
        "nums": [1, 2, 3],
        "items": [{"x": 1}, {"y": 2}],
        "nested": {"deep": {"value": "x"}},
    },
}


def matches(expr: str, event: dict[str, Any] = EVENT) -> bool:
    return compile_match(expr)(cel_event(event))


def evaluation_error(expr: str, event: dict[str, Any] = EVENT) -> str:
    with pytest.raises(MatchError) as info:
        matches(expr, event)
    return str(info.value)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('event.type == "order.created"', True),
        ("event.type == 'order.created'", True),
        ('event.type != "order.created"', False),
        ('event.type == "other"', False),
        ('event.data.nested.deep.value == "x"', True),
        ('event["type"] == "order.created"', True),
        ('event.data["kind"] == "widget"', True),
        # numbers compare by value whatever their type: the event's 3 is a double
        ("event.data.count == 3", True),
        ("event.data.count == 3.0", True),
        ("event.data.count != 4", True),
        ("event.data.count == -3", False),
        ("event.data.price == 25e-1", True),
        ("dyn(1) == 1.0", True),
        ("-3 == -3", True),
        # values of different types are unequal, not an error
        ('event.data.count == "3"', False),
        ("event.data.urgent == 1", False),
        ("event.data.note == false", False),
        ("event.data.note == null", True),
        ("event.type != null", True),
        ("event.data.urgent == true", True),
        ("event.data.archived == false", True),
        # lists and maps compare member by member
        ("event.data.nums == [1, 2, 3]", True),
        ('event.data.tags == ["a", "b"]', True),
        ('[1, 2] == [1, "a"]', False),
        ('event.data.nested == {"deep": {"value": "x"}}', True),
        ("event.data == event.data", True),
        # ordering
        ("event.data.count > 2", True),
        ("event.data.count < 2.5", False),
        ("event.data.price > event.data.count", False),
        ('"a" < "b"', True),
        ('timestamp(event.time) > timestamp("2024-01-01T00:00:00Z")', True),
        ('duration("1h") > duration("30m")', True),
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
        ("!!true", True),
        # && binds tighter than ||, ! tighter than ==
        ("true || false && false", True),
        ("false && false || true", True),
        ("(true || false) && false", False),
        ("!false == true", True),
        ('!(event.type == "x") && event.data.urgent', True),
        ("event.data.urgent", True),
        ("!event.data.archived", True),
        # the conditional operator
        ("event.data.urgent ? event.data.count > 1.0 : false", True),
        ('event.data.archived ? true : event.type.endsWith("created")', True),
    ],
)
def test_boolean_operators(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("has(event.data.kind)", True),
        ("has(event.data.nothing)", False),
        ("has((event.data.kind))", True),
        ("has(event.data.kind.x)", False),  # a field of a string
        ("has(event.data.note.x)", False),  # a field of null
        ('"a" in event.data.tags', True),
        ('"z" in event.data.tags', False),
        ("2 in event.data.nums", True),  # the event's 2.0
        ('event.data.kind in ["widget", "gadget"]', True),
        ('"kind" in event.data', True),
        ('"x" in {"widget": 1}', False),
        ("size(event.data.tags) == 2", True),
        ("event.type.size() == 13", True),
        ("size(event.data) == 11", True),
        ('event.type.startsWith("order") && event.source == "shop"', True),
        ('event.type.endsWith("created")', True),
        ('event.type.contains("der.c")', True),
        ('event.type.matches("^order\\\\.")', True),
        ('event.data.tags.exists(t, t == "b")', True),
        ("event.data.tags.all(t, t.size() == 1)", True),
        ('event.data.tags.exists_one(t, t == "a")', True),
        ("event.data.nums.filter(n, n > 1.0).size() == 2", True),
        ('event.data.tags.map(t, t + "!") == ["a!", "b!"]', True),
        ("event.data.items.exists(i, has(i.x))", True),
        ("event.data.items.all(i, has(i.x))", False),
        ("type(event.data.count) == double", True),
        ("type(event.type) == string", True),
        ("int(event.data.count) == 3", True),
        ("double(3) == event.data.count", True),
    ],
)
def test_functions_and_macros(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("event.data.count + 1.0 == 4.0", True),
        ("event.data.count * 2.0 > 5.0", True),
        ("event.data.count / 2.0 == 1.5", True),
        ("event.data.count-1.0 == 2.0", True),
        ("-event.data.count == -3.0", True),
        ("3 % 2 == 1", True),
        ('"a" + "b" == "ab"', True),
        ('event.data.tags + ["c"] == ["a", "b", "c"]', True),
        ("event.data.count / 0.0 > 1.0", True),  # +Inf
    ],
)
def test_arithmetic(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('string(event.data.count) == "3"', True),  # Go's %g, not Python's "3.0"
        ('string(event.data.price) == "2.5"', True),
        ('string(1e6) == "1e+06"', True),
        ('string(123456.0) == "123456"', True),
        ('string(1234567.0) == "1.234567e+06"', True),
        ('string(0.0001) == "0.0001"', True),
        ('string(0.00001) == "1e-05"', True),
        ('string(-0.0) == "-0"', True),
        ('string(1.0 / 0.0) == "+Inf"', True),
        ('string(0.1 + 0.2) == "0.30000000000000004"', True),
        ('string(event.data.urgent) == "true"', True),
        ('string(false) == "false"', True),
        ('string(7) + "x" == "7x"', True),
    ],
)
def test_string_conversion_writes_as_go_does(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('event.missing == "x"', "no such member in mapping: 'missing'"),
        ('event.data.kind.sub == "x"', "does not support field selection"),
        ("!event.data.nothing", "no such member in mapping: 'nothing'"),
        ("has(event.nothing.x)", "no such member in mapping: 'nothing'"),  # not just false
        ('event.missing == "x" || event.data.archived', "no such member"),
        ('event.data.tags[5] == "a"', "failed: invalid_argument"),
        ("1 / 0 == 1", "divide by zero"),
        ('other == "x"', "undeclared reference to 'other'"),
        # JSON numbers are doubles, and cel-go has no int + double nor double % anything
        ("event.data.count + 1 == 4", "no matching overload"),
        ("event.data.count % 2 == 1", "no matching overload"),
        ("event.data.kind * 2 == event.type", "no matching overload"),  # Python has str * int
        ("event.data.urgent + event.data.urgent == 2.0", "no matching overload"),
        ("event.data.urgent < 2.0", "no matching overload"),
        ("event.data.note < 1", "no matching overload"),
        ('"a" in event.type', "no matching overload"),
        ("string(event.data.note) == 'null'", "no such overload"),
        ("9223372036854775807 + 1 > 0", "overflow"),
        # a result that is not a bool is an error too, even a null one
        ("event.data.kind", "the result is not a boolean but StringType('widget')"),
        ("event.data.count", "the result is not a boolean but DoubleType(3.0)"),
        ("event.data.note", "the result is not a boolean but None"),
        ('event.data.urgent ? "a" : "b"', "the result is not a boolean"),
        ("event.type && true", "the result is not a boolean"),
    ],
)
def test_evaluation_errors(expr: str, problem: str) -> None:
    message = evaluation_error(expr)
    assert repr(expr) in message
    assert problem in message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('event.missing == "x" || event.data.urgent', True),
        ('event.data.urgent || event.missing == "x"', True),
        ('event.missing == "x" && event.data.archived', False),
        ("(event.type && true) || true", True),
        ("event.data.nested.deep.value == 1 || true", True),
    ],
)
def test_logical_operators_absorb_errors(expr: str, expected: bool) -> None:
    """``true || error`` is true and ``false && error`` is false, either way round."""
    assert matches(expr) is expected


def test_data_that_is_not_a_mapping() -> None:
    event = {"type": "t", "data": "plain text"}
    assert "does not support field selection" in evaluation_error('event.data.kind == "x"', event)
    assert matches('event.type == "t"', event) is True


def test_error_messages_are_bounded() -> None:
    """celpy writes the whole activation, event included, into some messages."""
    event = {"type": "t", "data": {"blob": "x" * 10_000}}
    assert len(evaluation_error("other == 1", event)) < 400


def test_a_number_beyond_a_double_is_an_error() -> None:
    """Go's ``json.Unmarshal`` cannot decode it into a float64 at all."""
    with pytest.raises(MatchError, match="beyond the range of a double"):
        cel_event({"data": {"n": 10**400}})


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (r'event.data.label == "say \"hi\"\n"', True),
        (r"event.data.label == 'say \"hi\"\n'", True),
        (r"event.data.label == 'say \'hi\'\n'", False),
        (r'"\x41\u00e9\101\\" == "AéA\\"', True),
        (r'"\U0001F600" == "😀"', True),
        (r'r"\d" == "\\d"', True),
        (r'b"\x00" == b"\000"', True),
        ('"tab\\there" == "tab\there"', True),
        ('"""one line""" == "one line"', True),
    ],
)
def test_string_literals(expr: str, expected: bool) -> None:
    assert matches(expr) is expected


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("event.type ==", "syntax error"),
        ('(event.type == "a"', "syntax error"),
        ('event.type == "a")', "syntax error"),
        ('event.type == "unterminated', "syntax error"),
        ("event. == 1", "syntax error"),
        ("1. == 1.0", "1. is no CEL number"),
        (r'event.type == "\q"', "invalid escape sequence"),
        # cel-go takes these, cel-python would read them wrong: refused rather than misread
        (r'"\?" == "?"', r"cel-python misreads the escapes \?, \` and \X"),
        (r'"\X41" == "A"', r"cel-python misreads"),
        ('"""two\nlines""" == "two\\nlines"', r"cel-python drops the line breaks"),
        ("event.data.nums.map(n, n > 1.0, n * 2.0) == [4.0, 6.0]", "map() takes a variable"),
        # daprd's compile loop never ends on a name cel-go does not declare; daca refuses it
        ('event.type.lowerAscii() == "x"', "'lowerAscii' is not a function of daprd's CEL"),
        ("undefined_fn(event)", "'undefined_fn' is not a function of daprd's CEL"),
        ('exists(event.data.tags, t, t == "a")', "'exists' is not a function"),
        ('.event.type == "a"', "'.event': daprd declares no name with a leading dot"),
        ("has(event)", "has() takes one field selection"),
        ("has()", "has() takes one field selection"),
        ("has(event.data.x, 1)", "has() takes one field selection"),
        ("event.data.tags.exists(t)", "exists() takes a variable and an expression"),
    ],
)
def test_expressions_that_do_not_compile(expr: str, problem: str) -> None:
    with pytest.raises(UnsupportedExpressionError) as info:
        compile_match(expr)
    message = str(info.value)
    assert message.startswith(f"invalid match expression {expr!r}: ")
    assert problem in message
    assert info.value.expression == expr


def test_compile_errors_are_value_errors() -> None:
    """The loader and ``parse_programmatic`` catch them as such."""
    assert issubclass(UnsupportedExpressionError, ValueError)


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_a_blank_match_always_holds(blank: str) -> None:
    """daprd's ``CreateRoutingRule`` trims the match; a rule without one is always taken."""
    assert compile_match(blank)(cel_event({})) is True


def test_whitespace_and_comments_are_ignored() -> None:
    assert matches('  event.type=="order.created"&&(  event.data.urgent ) // why\n') is True


def test_one_compiled_match_evaluates_many_events() -> None:
    match = compile_match('event.data.kind == "widget"')
    kinds = ["widget", "gadget", "widget"]
    assert [match(cel_event({"data": {"kind": kind}})) for kind in kinds] == [True, False, True]


# --- routing: what daprd's findMatchingRoute does with the results ----------------------------


def router(*matches: str, default: str | None = "/default") -> Router:
    rules = tuple(RouteRule(match=m, path=f"/rule{i}") for i, m in enumerate(matches))
    spec = SubscriptionSpec(pubsubname="pubsub", topic="orders", rules=rules, default_route=default)
    return Router(spec)


def test_the_first_rule_that_holds_routes_the_event() -> None:
    route = router('event.type == "x"', "event.data.urgent", "true")
    assert route.route(EVENT) == "/rule1"


def test_no_rule_holds_the_default_or_nothing() -> None:
    assert router('event.type == "x"').route(EVENT) == "/default"
    assert router('event.type == "x"', default=None).route(EVENT) is None
    assert router(default="/only").route({"no": "fields"}) == "/only"


def test_a_blank_match_routes_every_event() -> None:
    assert router('event.type == "x"', " ", "true").route(EVENT) == "/rule1"


def test_a_failing_rule_is_an_error_for_the_event(caplog: pytest.LogCaptureFixture) -> None:
    """daprd does not try the later rules nor the default: the event is dead-lettered or left
    with the broker, and the error is logged in daprd's words."""
    route = router('event.type == "x"', 'event.missing == "y"', "true")
    with (
        caplog.at_level(logging.ERROR, logger="daca.runtime.subscriptions"),
        pytest.raises(MatchError, match="no such member in mapping: 'missing'"),
    ):
        route.route(EVENT)
    [record] = caplog.records
    assert record.getMessage().startswith(
        "error finding matching route for event 1 in pubsub pubsub and topic orders: "
    )


def test_a_rule_that_does_not_compile_stops_the_subscription() -> None:
    with pytest.raises(UnsupportedExpressionError):
        router("event.type.lowerAscii() == 'x'")
