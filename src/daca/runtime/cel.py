"""CEL for subscription routing rules (``spec.routes.rules[].match``), evaluated by cel-python.

daprd compiles every ``match`` with google/cel-go v0.20.1 (``dapr/dapr: pkg/expr/expr.go``,
``DecodeString``): ``event``, like any other free identifier, is declared ``dyn``, and cel-go's
standard library is all there is (no string extensions). Per event it evaluates the rules in
order against ``{"event": cloudEvent}``, the ``map[string]any`` that ``json.Unmarshal`` made of
the stored CloudEvent (``pkg/runtime/subscription/subscription.go``, ``matchRoutingRule``). This
module runs cel-python (:mod:`celpy`) in that setting and hides where the two CELs differ:

- the event is converted once per event (:func:`cel_event`), every JSON number becoming a
  ``double`` as in Go: ``type(event.data.n) == double``, and ``event.data.n + 1`` is an error;
- cel-go's runtime equality is heterogeneous (``2.0 == 2`` holds, a bool never equals a number,
  values of different types are unequal rather than an error), for ``in`` too; cel-python
  raises or uses Python's rules, so :data:`_OPERATORS` replaces ``==``, ``!=``, ``in``, the
  comparisons and arithmetic (no ``int + double``, ``"ab" * 2`` or ``true < 2``) and
  ``string()`` (a double written as Go's ``%g``);
- ``has(a.b)`` is false when ``a`` has no ``b``, an error when ``a`` itself is missing;
- a result that is not a bool and any evaluation error (a missing field, ``1 / 0``) raise
  :class:`MatchError`: ``matchRoutingRule`` returns that error for the whole event, without
  trying the later rules, and the event is dead-lettered or left with the broker.

:func:`compile_match` raises :class:`UnsupportedExpressionError` at load for a syntax error, a
name cel-go does not declare as a function (daprd's ``DecodeString`` then loops forever), a bad
``has()``, and the few literals and forms cel-python would misread (``"\\?"``, ``"\\X41"``, a
line break in a triple-quoted string, three-argument ``map()``). What only cel-go's type checker
refuses (``1 == 1.0``, ``size(1)``) loads here and fails, or holds, when evaluated.
"""

from __future__ import annotations

import datetime
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

import celpy
import lark
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import (
    CELEvalError,
    CELFunction,
    CELUnsupportedError,
    Context,
    Evaluator,
    Result,
)

from daca.runtime.gofmt import go_float

#: cel-go's standard functions (``common/stdlib/standard.go``) that cel-python implements too.
_FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches", "type", "dyn",
        "bool", "bytes", "double", "duration", "int", "string", "timestamp", "uint",
        "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getMonth",
        "getHours", "getMilliseconds", "getMinutes", "getSeconds",
    }
)  # fmt: skip
#: cel-go's standard macros called on a receiver (``parser/macro.go``); ``has()`` is the other.
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
#: The escapes of quoted literals that cel-python decodes as cel-go does (``parser/gen/CEL.g4``).
_ESCAPES = re.compile(
    r"""\\(?:[abfnrtv"'\\]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2})"""
)
#: cel-go's other escapes, which cel-python reads wrong (``"\?"`` stays two characters).
_MISREAD_ESCAPES = re.compile(r"\\(?:[?`]|X[0-9a-fA-F]{2})")
_QUOTED = frozenset({"STRING_LIT", "MLSTRING_LIT", "BYTES_LIT"})
#: cel-go's ``NUM_FLOAT``: cel-python also takes ``1.`` and ``1.e3``.
_FLOAT = re.compile(r"-?(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?)")
#: How much of a CEL error message a log line or exception carries (celpy's can hold the event).
_MESSAGE_LIMIT = 300


class UnsupportedExpressionError(ValueError):
    """A match expression that does not compile, so the subscription cannot be loaded."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(f"invalid match expression {expression!r}: {problem}")
        self.expression = expression
        self.problem = problem


class MatchError(Exception):
    """Evaluating a match failed or gave no bool: daprd routes the event nowhere, as an error."""


class Match:
    """A compiled match expression; call it with an event from :func:`cel_event`."""

    __slots__ = ("_runner", "expression")

    def __init__(self, expression: str, runner: celpy.Runner | None) -> None:
        self.expression = expression
        self._runner = runner

    def __call__(self, event: celtypes.MapType) -> bool:
        """Whether the rule holds for ``event``; :class:`MatchError` when daprd would fail."""
        if self._runner is None:
            return True
        try:
            result = self._runner.evaluate({"event": event})
        except (CELEvalError, CELUnsupportedError) as exc:
            raise MatchError(f"match {self.expression!r} failed: {_describe(exc)}") from None
        if not isinstance(result, celtypes.BoolType):
            problem = f"the result is not a boolean but {_describe(result)}"
            raise MatchError(f"match {self.expression!r}: {problem}")
        return bool(result)


def compile_match(expression: str) -> Match:
    """Parse and check ``expression`` once, at load; :class:`UnsupportedExpressionError`.

    A blank expression always holds: daprd's ``CreateRoutingRule`` trims it, and a rule with
    no match is taken (``pkg/runtime/pubsub/subscriptions.go``).
    """
    if not expression.strip():
        return Match(expression, None)
    try:
        ast = _ENVIRONMENT.compile(expression)
    except CELParseError as exc:
        raise UnsupportedExpressionError(expression, f"syntax error: {exc}") from None
    _check(expression, ast)
    return Match(expression, _ENVIRONMENT.program(ast, functions=_OPERATORS))


def cel_event(event: Mapping[str, Any]) -> celtypes.MapType:
    """The CloudEvent as the CEL map daprd evaluates (numbers are doubles); once per event.

    Raises :class:`MatchError` for a number beyond a double, which Go cannot decode at all.
    """
    try:
        return _map(event)
    except OverflowError:
        raise MatchError("the event holds a number beyond the range of a double") from None


def _map(value: Mapping[str, Any]) -> celtypes.MapType:
    result = celtypes.MapType()
    dict.update(result, ((_string_value(key), _value(item)) for key, item in value.items()))
    return result


def _value(value: Any) -> celtypes.Value:
    """One JSON value as CEL. Dispatch on the exact type, and ``str.__new__`` and the like
    instead of the celtypes constructors (which inspect their argument), halve the cost."""
    return _CONVERTERS[type(value)](value)


def _string_value(text: str) -> celtypes.StringType:
    return str.__new__(celtypes.StringType, text)


def _double(number: float) -> celtypes.DoubleType:
    return float.__new__(celtypes.DoubleType, number)


_CONVERTERS: dict[type, Callable[[Any], celtypes.Value]] = {
    str: _string_value,
    bool: lambda flag: int.__new__(celtypes.BoolType, flag),
    int: _double,
    float: _double,
    type(None): lambda _none: None,
    dict: _map,
    list: lambda items: celtypes.ListType(map(_value, items)),
}


def _describe(value: object) -> str:
    text = str(value.args[0]) if isinstance(value, Exception) and value.args else repr(value)
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


# --- load-time checks -----------------------------------------------------------------------


def _check(expression: str, ast: lark.Tree[Any]) -> None:
    """Refuse at load what daprd cannot load (names cel-go does not declare, a bad ``has()``,
    an unknown escape) and what cel-python would read otherwise than cel-go."""
    for token in ast.scan_values(lambda value: isinstance(value, lark.Token)):
        _check_literal(expression, token)
    for node in ast.iter_subtrees():
        if node.data in ("dot_ident", "dot_ident_arg"):
            problem = f"'.{node.children[0]}': daprd declares no name with a leading dot"
            raise UnsupportedExpressionError(expression, problem)
        if node.data == "ident_arg":
            name, args = node.children[0], node.children[1:]
            if name == "has":
                if _arguments(args) != 1 or _selection(args[0]) is None:
                    raise UnsupportedExpressionError(
                        expression, "has() takes one field selection, as in has(event.data.x)"
                    )
            elif name not in _FUNCTIONS:
                _unknown_function(expression, str(name))
        elif node.data == "member_dot_arg":
            name, arguments = str(node.children[1]), _arguments(node.children[2:])
            if name in _MACROS:
                if arguments != 2:
                    problem = (
                        f"{name}() takes a variable and an expression (cel-python's only form)"
                    )
                    raise UnsupportedExpressionError(expression, problem)
            elif name not in _FUNCTIONS:
                _unknown_function(expression, name)


def _check_literal(expression: str, token: lark.Token) -> None:
    """Refuse the literals cel-go refuses, and the ones cel-python would read differently."""
    if token.type == "FLOAT_LIT" and not _FLOAT.fullmatch(token):
        raise UnsupportedExpressionError(expression, f"{token} is no CEL number")
    if token.type not in _QUOTED:
        return
    if "\n" in token or "\r" in token:  # only a triple-quoted literal can hold one
        problem = f"cel-python drops the line breaks of {token}: write \\n"
        raise UnsupportedExpressionError(expression, problem)
    literal = token.lstrip("bB")
    if literal[:1] in ("r", "R"):
        return
    rest = _ESCAPES.sub("", literal)
    if _MISREAD_ESCAPES.search(rest):
        problem = f"cel-python misreads the escapes \\?, \\` and \\X in {token}: write ? ` \\x"
        raise UnsupportedExpressionError(expression, problem)
    if "\\" in rest:
        raise UnsupportedExpressionError(expression, f"invalid escape sequence in {token}")


def _unknown_function(expression: str, name: str) -> None:
    known = ", ".join(sorted(_FUNCTIONS | _MACROS | {"has"}))
    problem = f"{name!r} is not a function of daprd's CEL (its standard library: {known})"
    raise UnsupportedExpressionError(expression, problem)


def _arguments(exprlist: list[Any]) -> int:
    """How many arguments a call has: its optional ``exprlist`` child, as a list of 0 or 1."""
    return len(exprlist[0].children) if exprlist else 0


def _selection(exprlist: lark.Tree[Any]) -> lark.Tree[Any] | None:
    """The ``member_dot`` node that the single argument of ``has()`` is, if it is one."""
    node: object = exprlist.children[0] if exprlist.children else None
    while isinstance(node, lark.Tree):
        if node.data == "member_dot":
            return node
        node = node.children[0] if len(node.children) == 1 else None  # through (...) too
    return None


# --- evaluation -----------------------------------------------------------------------------


class _Evaluator(Evaluator):
    """celpy's evaluator with cel-go's ``has()``: an error below the last field propagates."""

    def sub_evaluator(self, ast: lark.Tree[Any]) -> Evaluator:
        return _Evaluator(ast, activation=self.activation)

    def macro_has_eval(self, exprlist: lark.Tree[Any]) -> celtypes.BoolType:
        value = self.visit_children(exprlist)[0]
        if not isinstance(value, CELEvalError):
            return celtypes.BoolType(True)
        if value.tree is not None and value.tree is _selection(exprlist):
            return celtypes.BoolType(False)
        # celpy annotates this method as returning a bool, but its callers pass any Result on.
        return cast(celtypes.BoolType, value)


class _Runner(celpy.InterpretedRunner):
    """celpy's runner with :class:`_Evaluator`, building the base activation (functions and type
    names) once rather than per evaluation: the evaluator clones it before binding ``event``."""

    def __init__(
        self, environment: celpy.Environment, ast: lark.Tree[Any], functions: Any = None
    ) -> None:
        super().__init__(environment, ast, functions)
        self._activation = self.new_activation()

    def evaluate(self, context: Context) -> celtypes.Value:
        return _Evaluator(ast=self.ast, activation=self._activation).evaluate(context)


#: CEL type names of the Python values celpy computes with; its operators return plain ``float``,
#: ``str`` and ``list`` as often as its own types, so the kind is what an operand is checked by.
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    ((celtypes.BoolType, bool), "bool"),
    (celtypes.UintType, "uint"),
    (int, "int"),
    (float, "double"),
    (str, "string"),
    (bytes, "bytes"),
    (list, "list"),
    (dict, "map"),
    (datetime.datetime, "timestamp"),
    (datetime.timedelta, "duration"),
    (type, "type"),
)
_NUMERIC = frozenset({"int", "uint", "double"})
_TIME = frozenset({"timestamp", "duration"})


def _kind(value: object) -> str:
    if value is None:
        return "null"
    for classes, name in _KINDS:
        if isinstance(value, classes):
            return name
    return type(value).__name__


def _equal(left: Any, right: Any) -> bool:
    """cel-go's runtime equality (``common/types``): numbers by value whatever their type,
    lists and maps member by member, anything else equal only to a value of its own type."""
    kind, other = _kind(left), _kind(right)
    if kind in _NUMERIC and other in _NUMERIC:
        if "double" in (kind, other):
            return float(left) == float(right)
        return int(left) == int(right)
    if kind != other:
        return False
    if kind == "list":
        return len(left) == len(right) and all(map(_equal, left, right))
    if kind == "map":
        return len(left) == len(right) and all(
            _equal(value, _lookup(right, key)) for key, value in left.items()
        )
    return bool(left == right)


def _lookup(mapping: dict[Any, Any], key: object) -> object:
    """``mapping[key]`` under cel-go's equality (``1`` finds ``1u``), else :data:`_MISSING`."""
    return next((dict.__getitem__(mapping, k) for k in mapping if _equal(k, key)), _MISSING)


_MISSING = object()


def _eq(left: Result, right: Result) -> Result:
    if isinstance(left, CELEvalError):
        return left
    if isinstance(right, CELEvalError):
        return right
    return celtypes.BoolType(_equal(left, right))


def _ne(left: Result, right: Result) -> Result:
    result = _eq(left, right)
    return celtypes.BoolType(not result) if isinstance(result, celtypes.BoolType) else result


def _in(item: Result, container: Result) -> Result:
    if isinstance(item, CELEvalError):
        return item
    if isinstance(container, CELEvalError):
        return container
    kind = _kind(container)
    if kind == "list":
        return celtypes.BoolType(
            any(_equal(item, element) for element in cast(list[Any], container))
        )
    if kind == "map":
        return celtypes.BoolType(_lookup(cast(dict[Any, Any], container), item) is not _MISSING)
    raise TypeError(f"no such overload: {_kind(item)} in {kind}")


def _no_overload(left: object, right: object) -> TypeError:
    return TypeError(f"no such overload: {_kind(left)} and {_kind(right)}")


def _arithmetic(
    apply: Callable[[Any, Any], Any], kinds: frozenset[str], *, times: bool = False
) -> Callable[[Result, Result], Result]:
    """``apply`` to two operands of one of ``kinds`` only, as cel-go's overloads are: no ``int +
    double``, no ``"ab" * 2`` or ``true + true`` (Python has them). With ``times``, timestamps
    and durations mix as Python's ``datetime`` allows, which is what CEL allows for + and -."""

    def checked(left: Result, right: Result) -> Result:
        if isinstance(left, CELEvalError):
            return left
        if isinstance(right, CELEvalError):
            return right
        kind, other = _kind(left), _kind(right)
        if (kind != other or kind not in kinds) and not (times and {kind, other} <= _TIME):
            raise _no_overload(left, right)
        return cast(Result, apply(left, right))

    return checked


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Result, Result], Result]:
    """``compare`` where cel-go has it: numbers of any types together, a bool only with a bool."""

    def checked(left: Result, right: Result) -> Result:
        if isinstance(left, CELEvalError):
            return left
        if isinstance(right, CELEvalError):
            return right
        if (_kind(left) == "bool") != (_kind(right) == "bool"):
            raise _no_overload(left, right)
        return celtypes.BoolType(compare(left, right))

    return checked


def _string(value: Any) -> Result:
    """cel-go's ``string()`` of what an event holds: a double as Go's ``%g`` writes it (``3.0``
    is ``"3"``), a bool as ``true``/``false``; ``null`` has no conversion."""
    kind = _kind(value)
    if kind == "double":
        return celtypes.StringType(go_float(float(value)))
    if kind == "bool":
        return celtypes.StringType("true" if value else "false")
    if kind == "null":
        raise TypeError("no such overload: string(null)")
    return celtypes.StringType(value)


#: The operators and functions whose cel-python versions differ from cel-go's at run time.
_OPERATORS: dict[str, CELFunction] = {
    "_==_": _eq,
    "_!=_": _ne,
    "_in_": _in,
    "_<_": _ordering(operator.lt),
    "_<=_": _ordering(operator.le),
    "_>_": _ordering(operator.gt),
    "_>=_": _ordering(operator.ge),
    "_+_": _arithmetic(operator.add, _NUMERIC | {"string", "bytes", "list"}, times=True),
    "_-_": _arithmetic(operator.sub, _NUMERIC, times=True),
    "_*_": _arithmetic(operator.mul, _NUMERIC),
    "_/_": _arithmetic(operator.truediv, _NUMERIC),
    "_%_": _arithmetic(operator.mod, frozenset({"int", "uint"})),
    "string": _string,
}

#: ``string`` names the type as well as the conversion, which :data:`_OPERATORS` replaces: the
#: annotation keeps the name (``type(x) == string``) on the type.
_ENVIRONMENT = celpy.Environment(annotations={"string": celtypes.StringType}, runner_class=_Runner)
