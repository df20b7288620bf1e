"""The runtime's error tree: drawn as it is, rendered as daprd renders it, and a store's error
answered with the identity its operation gives it."""

from __future__ import annotations

import json
import re

import pytest

from daca.runtime import errors
from daca.runtime.api.common import error_response
from daca.runtime.api.stateerrors import store_failure

_DRAWN = re.compile(r"(?P<indent>[ │├└─]*)(?P<name>\w+)(?: +(?P<status>\d{3}) (?P<code>ERR_\w+))?")


def drawn_tree() -> dict[str, tuple[str | None, int | None, str | None]]:
    """Each class the module docstring draws: (its parent, status, code) as drawn."""
    assert errors.__doc__ is not None
    drawing = errors.__doc__.split("\n\n")[1]
    parents: list[str] = []
    drawn: dict[str, tuple[str | None, int | None, str | None]] = {}
    for line in drawing.splitlines():
        match = _DRAWN.match(line.removeprefix("    "))
        assert match is not None, line
        depth = len(match["indent"]) // 4
        parents[depth:] = [match["name"]]
        status = int(match["status"]) if match["status"] else None
        drawn[match["name"]] = (parents[depth - 1] if depth else None, status, match["code"])
    return drawn


def test_the_drawn_tree_is_the_tree() -> None:
    classes = {
        name: value
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.SidecarError)
    }
    drawn = drawn_tree()
    assert drawn.keys() == classes.keys()
    for name, (parent, status, code) in drawn.items():
        cls = classes[name]
        assert cls.__bases__ == ((classes[parent],) if parent else (Exception,)), name
        if issubclass(cls, errors.DaprError) and cls is not errors.DaprError:
            assert (cls.status, cls.error_code) == (status, code), name
        else:
            assert status is None, name


def test_the_renderer_writes_daprd_error_body() -> None:
    response = error_response(errors.StateStoreNotFound("state store x is not found"))
    assert response.status_code == 400
    body = {"errorCode": "ERR_STATE_STORE_NOT_FOUND", "message": "state store x is not found"}
    assert json.loads(response.body) == body
    detail = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R"}
    response = error_response(errors.PubsubPublishFailed("failed", details=[detail]))
    assert response.status_code == 500
    assert json.loads(response.body)["details"] == [detail]


MISMATCH = errors.ETagMismatchError("failed to set key k")
INVALID = errors.ETagInvalidError('strconv.Atoi: parsing "x": invalid syntax')
PLAIN = errors.StoreError("connection refused")
MISMATCHED = "possible etag mismatch. error from state store: "
INVALIDATED = "invalid etag value: "


@pytest.mark.parametrize(
    ("failed", "exc", "status", "message"),
    [
        (errors.StateSaveFailed, MISMATCH, 409, MISMATCHED),
        (errors.StateSaveFailed, INVALID, 400, INVALIDATED),
        (errors.StateSaveFailed, PLAIN, 500, ""),
        (errors.StateDeleteFailed, MISMATCH, 409, MISMATCHED),
        (errors.StateDeleteFailed, INVALID, 400, INVALIDATED),
        (errors.StateTransactionFailed, MISMATCH, 500, MISMATCHED),
        (errors.StateTransactionFailed, INVALID, 500, INVALIDATED),
        (errors.StateGetFailed, PLAIN, 500, ""),
    ],
)
def test_a_store_error_is_answered_as_its_operation_answers_it(
    failed: type[errors.DaprError], exc: errors.StoreError, status: int, message: str
) -> None:
    """A mismatch is 409 on save and delete (daprd's ``stateErrorResponse``), 500 in a
    transaction; the code is always the operation's."""
    answer = store_failure(failed, exc, "context: ")
    assert isinstance(answer, failed)
    assert (answer.status, answer.error_code) == (status, failed.error_code)
    assert answer.message == f"context: {message}{exc}"
