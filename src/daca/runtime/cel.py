"""The subset of CEL that subscription ``routes.rules[].match`` expressions may use.

Supported, over a CloudEvent mapping bound to ``event``:

- field access: ``event.type``, ``event.data.kind`` (nested mappings);
- literals: strings in double or single quotes with CEL escapes, ints, floats (``1.5``, ``1e3``,
  an optional leading ``-``), ``true``, ``false``, ``null``;
- ``==``, ``!=``, ``&&``, ``||``, ``!``, parentheses, and a bare boolean field
  (``event.data.urgent``).

Precedence, highest first: ``!``; ``==`` ``!=``; ``&&``; ``||``.

Evaluation follows CEL's error semantics: reading a missing field (or a field of something that is
not a mapping) gives an *error value* rather than raising. Comparisons with it are errors, ``!`` of
it is an error, ``&&``/``||`` absorb it when the other side decides the result
(``false && err`` is false, ``true || err`` is true). A result that is not exactly ``true`` (an
error, a non-boolean) means "does not match". Equality is CEL's: ``1 == 1.0`` is true, a boolean
never equals a number, values of different types are simply unequal.

Anything else (function or method calls, ``in``, ``<``, arithmetic, lists, maps, macros, other
identifiers than ``event``) raises :class:`UnsupportedExpressionError` when compiled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn

SUPPORTED = (
    "field access on 'event' (event.type, event.data.kind), string/int/float/true/false/null "
    "literals, ==, !=, &&, ||, !, parentheses and a bare boolean field"
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
    |(?P<int>\d+)
    |(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>==|!=|&&|\|\||[!().-])
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_LITERALS: dict[str, object] = {"true": True, "false": False, "null": None}


class UnsupportedExpressionError(ValueError):
    """A match expression is malformed or uses CEL outside the supported subset."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(
            f"unsupported match expression {expression!r}: {problem}. "
            f"Supported subset: {SUPPORTED}."
        )
        self.expression = expression
        self.problem = problem


class _Error:
    """CEL's error value: what a missing field or an ill-typed operation evaluates to."""


ERROR = _Error()

Evaluator = Callable[[Mapping[str, Any]], object]


class _Token(NamedTuple):
    kind: str
    text: str
    pos: int


def compile_match(expr: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile ``expr`` into a predicate over a CloudEvent mapping (bound to ``event``)."""
    evaluate = _Parser(expr).parse()

    def matches(event: Mapping[str, Any]) -> bool:
        return evaluate(event) is True

    return matches


def _tokenize(expr: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expr):
        found = _TOKEN.match(expr, pos)
        if found is None:
            problem = f"{expr[pos]!r} at position {pos} is not allowed"
            raise UnsupportedExpressionError(expr, problem)
        assert found.lastgroup is not None
        if found.lastgroup != "ws":
            tokens.append(_Token(found.lastgroup, found.group(), pos))
        pos = found.end()
    return tokens


def _unescape(expr: str, quoted: str) -> str:
    def replace(escape: re.Match[str]) -> str:
        code = escape.group(1)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        if code[0] in "xuU":
            return chr(int(code[1:], 16))
        if len(code) == 3:
            return chr(int(code, 8))
        raise UnsupportedExpressionError(expr, f"invalid escape sequence '\\{code}' in {quoted}")

    return _ESCAPE.sub(replace, quoted[1:-1])


class _Parser:
    """Recursive descent over the token list; each rule returns an evaluator closure."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.index = 0

    def parse(self) -> Evaluator:
        if not self.tokens:
            raise UnsupportedExpressionError(self.expr, "the expression is empty")
        result = self._or()
        if self._peek() is not None:
            self._unexpected()
        return result

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, text: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "op" and token.text == text:
            self.index += 1
            return True
        return False

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise UnsupportedExpressionError(self.expr, "the expression ends unexpectedly")
        self.index += 1
        return token

    def _unexpected(self) -> NoReturn:
        token = self.tokens[self.index]
        raise UnsupportedExpressionError(
            self.expr, f"unexpected {token.text!r} at position {token.pos}"
        )

    def _or(self) -> Evaluator:
        left = self._and()
        while self._take("||"):
            left = _logical(left, self._and(), absorbing=True)
        return left

    def _and(self) -> Evaluator:
        left = self._equality()
        while self._take("&&"):
            left = _logical(left, self._equality(), absorbing=False)
        return left

    def _equality(self) -> Evaluator:
        left = self._unary()
        while True:
            if self._take("=="):
                left = _compare(left, self._unary(), negate=False)
            elif self._take("!="):
                left = _compare(left, self._unary(), negate=True)
            else:
                return left

    def _unary(self) -> Evaluator:
        if self._take("!"):
            return _negation(self._unary())
        return self._primary()

    def _primary(self) -> Evaluator:
        token = self._next()
        if token.kind == "op" and token.text == "(":
            inner = self._or()
            if not self._take(")"):
                raise UnsupportedExpressionError(self.expr, "missing closing parenthesis")
            return inner
        if token.kind == "op" and token.text == "-":
            return self._negative_number()
        if token.kind == "ident":
            return self._identifier(token)
        if token.kind == "op":
            self.index -= 1
            self._unexpected()
        return _constant(self._literal(token))

    def _literal(self, token: _Token) -> object:
        if token.kind == "str":
            return _unescape(self.expr, token.text)
        return _number(token)

    def _negative_number(self) -> Evaluator:
        token = self._next()
        if token.kind not in ("int", "float"):
            raise UnsupportedExpressionError(self.expr, "arithmetic (unary minus) is not supported")
        return _constant(-_number(token))

    def _identifier(self, token: _Token) -> Evaluator:
        if token.text in _LITERALS:
            return _constant(_LITERALS[token.text])
        if token.text != "event":
            self._reject_call()
            raise UnsupportedExpressionError(
                self.expr, f"unknown identifier {token.text!r} (only 'event' is bound)"
            )
        fields: list[str] = []
        while self._take("."):
            name = self._next()
            if name.kind != "ident":
                raise UnsupportedExpressionError(self.expr, "expected a field name after '.'")
            fields.append(name.text)
        self._reject_call()
        return _path(tuple(fields))

    def _reject_call(self) -> None:
        if self._take("("):
            raise UnsupportedExpressionError(
                self.expr, "function and method calls are not supported"
            )


def _number(token: _Token) -> int | float:
    return int(token.text) if token.kind == "int" else float(token.text)


def _constant(value: object) -> Evaluator:
    return lambda _event: value


def _path(fields: tuple[str, ...]) -> Evaluator:
    def read(event: Mapping[str, Any]) -> object:
        current: object = event
        for name in fields:
            if not isinstance(current, Mapping) or name not in current:
                return ERROR
            current = current[name]
        return current

    return read


def _equal(left: object, right: object) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _compare(left: Evaluator, right: Evaluator, *, negate: bool) -> Evaluator:
    def run(event: Mapping[str, Any]) -> object:
        a, b = left(event), right(event)
        if a is ERROR or b is ERROR:
            return ERROR
        return _equal(a, b) != negate

    return run


def _negation(operand: Evaluator) -> Evaluator:
    def run(event: Mapping[str, Any]) -> object:
        value = operand(event)
        return (not value) if isinstance(value, bool) else ERROR

    return run


def _logical(left: Evaluator, right: Evaluator, *, absorbing: bool) -> Evaluator:
    """``||`` (``absorbing=True``) or ``&&`` (``absorbing=False``) with CEL's error rules: the
    absorbing value decides the result even when the other side is an error."""

    def run(event: Mapping[str, Any]) -> object:
        a = left(event)
        if a is absorbing:
            return absorbing
        b = right(event)
        if b is absorbing:
            return absorbing
        return (not absorbing) if (a is (not absorbing) and b is (not absorbing)) else ERROR

    return run
