"""What both services' OpenAPI documents share: the error answers and document helpers.

Every error a service answers is ``{"detail": "one sentence"}`` (``ErrorDetail``), except a
request that fails validation: FastAPI's ``{"detail": [issue, ...]}`` (``ValidationFailed``).
``answer_as_documented`` makes the framework's own answers keep to that: an unexpected error is
a JSON 500, and a 405 names in ``Allow`` every method of the path. The helpers complete a
document FastAPI generated (``DocumentedApp``): component schemas of models that no route
parameter names (a body read raw), and the security requirements of an access mode. (The one
module of ``daca.contracts`` that uses FastAPI.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException


class ErrorDetail(BaseModel):
    """An error answer: what went wrong, in one sentence."""

    detail: str


class ValidationIssue(BaseModel):
    """One reason a request was refused: where (``loc``), what and why."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationFailed(BaseModel):
    """A request that does not match the API's schema (422), with every issue found."""

    detail: list[ValidationIssue]


#: What a local-mode service answers 403 for, on every route (``daca.access.local``).
LOCAL_MODE_REFUSAL = (
    "Local mode refused the request: it comes from another machine, names a Host that is not "
    "this machine, or is a cross-site browser request."
)

#: The response of a route for each error status, keyed by status: ``responses=`` of a route.
Responses = dict[int | str, dict[str, Any]]


def error_responses(descriptions: Mapping[int, str]) -> Responses:
    """``{"detail": ...}`` answers with these descriptions (422 is ``ValidationFailed``)."""
    return {
        status: {"model": ValidationFailed if status == 422 else ErrorDetail, "description": text}
        for status, text in descriptions.items()
    }


def add_component_schemas(document: dict[str, Any], *models: type[BaseModel]) -> None:
    """Add ``models`` (and the models they use) to ``document``'s component schemas.

    A name already there must have the same schema: two different models of one name would
    make every ``$ref`` to it ambiguous.
    """
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        definitions = found.pop("$defs", {})
        for name, schema in {**definitions, model.__name__: found}.items():
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"two different schemas named {name!r}")


def sort_responses(document: dict[str, Any]) -> None:
    """Order each operation's answers by status, as a reader looks them up."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.get("responses", {})
            operation["responses"] = {status: answers[status] for status in sorted(answers)}


def drop_security(document: dict[str, Any]) -> None:
    """Remove every security requirement and scheme: an access mode that checks no credential."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.pop("security", None)
    components = document.get("components", {})
    components.pop("securitySchemes", None)


Completion = Callable[[dict[str, Any]], None]


class DocumentedApp(FastAPI):
    """A FastAPI app whose generated OpenAPI document ``complete`` finishes (once, lazily);
    then each operation's answers are put in the order of their statuses."""

    def __init__(self, *, complete: Completion, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._complete = complete
        self._completed: dict[str, Any] | None = None

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()  # generated again when routes were added since
        if document is not self._completed:
            self._complete(document)
            sort_responses(document)
            self._completed = document
        return document


def answer_as_documented(app: FastAPI) -> None:
    """Install the handlers that keep the framework's own answers to the documented shapes."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    The router's 405 names only the methods of the first route whose path matches, so a path
    served by two routes (``GET`` and ``POST /deadletters``) would name only one method.
    """
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's rendering of an ``HTTPException``, with every method of the path on a 405."""
    assert isinstance(exc, HTTPException)
    methods = allowed_methods(request) if exc.status_code == 405 else []
    if methods:
        headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
        exc = HTTPException(405, exc.detail, headers=headers)
    return await http_exception_handler(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 for an unexpected error, as ``{"detail": ...}`` like every other error (the error is
    still raised on, so the server logs it with its traceback)."""
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
