"""Every error the API answers is JSON of one shape: `{"error": {"status", "code", "message"}}`.

Validation problems name the parameter and the reason; an unexpected exception becomes a
500 with no detail (the log line has it, bound to the request), so no internal text, and
never a secret, reaches a caller.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger()

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 503: "unavailable"}


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    problems: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def error(status: int, message: str, code: str | None = None, problems: list[dict[str, Any]] | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    detail: dict[str, Any] = {"status": status, "code": code or _CODES.get(status, "error"), "message": message}
    if problems is not None:
        detail["problems"] = problems
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid bearer token"},
    403: {"model": ErrorBody, "description": "The token's scope does not allow this"},
    422: {"model": ErrorBody, "description": "A parameter is invalid"},
}


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "")}
                    for e in exc.errors()]
        first = problems[0] if problems else {"where": "", "reason": "invalid request"}
        return error(422, f"{first['where']}: {first['reason']}", problems=problems)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("api error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        return error(500, "internal error (see the hub's log)", "internal")
