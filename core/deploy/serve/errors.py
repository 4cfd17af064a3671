"""One error shape for everything the server refuses: ``{"error": {"code", "message", "details"}}``.

The same model is declared in the OpenAPI document for every error status a route can send
(:func:`responses`) and is what the handlers below actually send, FastAPI's own request
validation errors and Starlette's 404/405 included, so generated clients can trust the
document.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """One problem of a request body: where it is and what is wrong."""

    row: int | None = Field(description="index of the row in `rows`, when the problem is in one")
    field: str | None = Field(description="the row's field (column name), when known")
    message: str = Field(description="where and what, e.g. `rows[1].x: Input should be a number`")


class ErrorInfo(BaseModel):
    """What went wrong, for a program (``code``) and for a person (``message``)."""

    code: str = Field(
        description="stable machine-readable reason: unauthorized, not_found, method_not_allowed, "
        "body_too_large, too_many_rows, invalid_request, queue_full, timeout, internal"
    )
    message: str = Field(description="one line saying what is wrong and what to do")
    details: list[Problem] | dict[str, Any] | None = Field(
        default=None,
        description="invalid_request: one entry per problem; limits: the limit and what was sent",
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


class ApiError(Exception):
    """An error the server answers with ``status`` and an :class:`ErrorResponse` body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, dict(headers or {})

    def response(self) -> JSONResponse:
        """The JSON response carrying this error."""
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


_HEADER = {"schema": {"type": "string"}}
#: Status -> (description, headers always sent with it), for the OpenAPI document.
_DECLARED: dict[int, tuple[str, dict[str, Any]]] = {
    401: (
        "no or wrong API key (`Authorization: Bearer KEY`)",
        {"WWW-Authenticate": {**_HEADER, "description": "`Bearer`"}},
    ),
    404: ("no such task on this server", {}),
    413: ("request body over --max-body-bytes, or more rows than --max-rows", {}),
    422: ("the body is not valid JSON, or a row misses or mistypes a field", {}),
    429: (
        "the queue is full (--max-queue): retry later",
        {"Retry-After": {**_HEADER, "description": "seconds to wait before retrying"}},
    ),
    500: ("unexpected failure; the server log has the traceback", {}),
    503: (
        "the predictions took longer than --request-timeout",
        {"Retry-After": {**_HEADER, "description": "seconds to wait before retrying"}},
    ),
}
#: Reason codes of Starlette's own HTTP errors (an unknown path, a method a path lacks).
_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring :class:`ErrorResponse` for each of ``statuses``."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, headers = _DECLARED[status]
        declared[status] = {"model": ErrorResponse, "description": description}
        if headers:
            declared[status]["headers"] = headers
    return declared


def explain(errors: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    """Pydantic errors as one line and one :class:`Problem` each, naming the row and field."""
    items = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "body"]
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", error.get("msg"))
            items.append(
                {"row": None, "field": None, "message": f"the body is not valid JSON ({reason})"}
            )
            continue
        row = loc[1] if len(loc) > 1 and loc[0] == "rows" and isinstance(loc[1], int) else None
        field = str(loc[2]) if row is not None and len(loc) > 2 else None
        if field:
            where = f"rows[{row}].{field}"
        elif row is not None:
            where = f"rows[{row}]"
        else:
            where = ".".join(map(str, loc)) or "body"
        items.append({"row": row, "field": field, "message": f"{where}: {error['msg']}"})
    shown = "; ".join(item["message"] for item in items[:5])
    more = f" (and {len(items) - 5} more)" if len(items) > 5 else ""
    return shown + more, items


def add_error_handlers(app: FastAPI) -> None:
    """Send every error, FastAPI's and Starlette's own included, as an :class:`ErrorResponse`."""

    @app.exception_handler(ApiError)
    async def refused(request: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        message, problems = explain(error.errors())
        return ApiError(422, "invalid_request", message, problems).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI's only 400: a body it cannot decode
            message = "the body is not valid JSON (it cannot be decoded: send UTF-8 JSON)"
            return ApiError(422, "invalid_request", message, []).response()
        code = _CODES.get(error.status_code, f"http_{error.status_code}")
        return ApiError(error.status_code, code, str(error.detail), None, error.headers).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        message = f"internal error ({type(error).__name__}); the server log has the details"
        return ApiError(500, "internal", message).response()
