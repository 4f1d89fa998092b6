"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every failure leaves as `application/problem+json` with a stable `code`; a bug leaves as a 500 with the
request id and nothing else (the stack trace goes to the log, never to the client).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from parlour.common import errors

logger = structlog.get_logger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

_STATUS_BY_CATEGORY: dict[type[errors.ParlourError], int] = {
    errors.InvalidInput: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}

# A database or server that cannot be reached is an outage to report as 503, not a bug.
_DEPENDENCY_FAILURES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    ConnectionError,
    TimeoutError,
)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "unavailable",
}

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


def status_for(error: errors.ParlourError) -> int:
    """The HTTP status of an error, by the category it descends from."""
    for category in type(error).__mro__:
        if category in _STATUS_BY_CATEGORY:
            return _STATUS_BY_CATEGORY[category]
    return 500


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem-details response for `request`."""
    body: dict[str, Any] = {
        "type": f"urn:parlour:error:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


async def _parlour_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ParlourError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, exc.retry_after))
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="parlour"'
    return problem(request, status, exc.code, exc.message, headers, **exc.details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"location": list(error.get("loc", ())), "message": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    return problem(request, 422, "invalid_input", "The request does not match the schema.", errors=fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_methods_of(request))
    return problem(request, exc.status_code, code, detail, headers)


def _methods_of(request: Request) -> list[str]:
    # Starlette names only the methods of the first route matching the path; a path can have several.
    # Asked per method, since included routers hide their routes' methods behind `matches`.
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("dependency unavailable", path=request.url.path, error=type(exc).__name__)
    return problem(request, 503, errors.Unavailable.code, errors.Unavailable.default_message)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", path=request.url.path, exc_info=exc)
    return problem(request, 500, "internal", "An unexpected error occurred; it has been logged.")


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of `app` a problem document."""
    app.add_exception_handler(errors.ParlourError, _parlour_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for failure in _DEPENDENCY_FAILURES:
        app.add_exception_handler(failure, _dependency_down)
    app.add_exception_handler(Exception, _unexpected_error)
