"""The one place that renders every known failure as JSON (under ``/api/``) or an HTML page."""

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.catalog.contention import is_busy
from app.catalog.room import is_disk_full
from app.errors import InvalidToken, NotSignedIn, StreamportError

logger = logging.getLogger("streamport")


def wants_json(request: Request) -> bool:
    """API paths answer errors in JSON; every other path gets an HTML page."""
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def render_error(
    request: Request, status_code: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """The error response for this request: JSON under /api/, the error page elsewhere."""
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status_code": status_code, "reason": _reason(status_code), "detail": detail},
        status_code=status_code,
        headers=headers,
    )


def _reason(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(
            str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path")
        )
        message = error.get("msg", "invalid value")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "Invalid request."


async def _handle_streamport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StreamportError)
    if (
        isinstance(exc, NotSignedIn)
        and not isinstance(exc, InvalidToken)
        and request.method in ("GET", "HEAD")
        and not wants_json(request)
    ):
        # A page that needs an account sends people to sign in, and back afterwards.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    return render_error(request, exc.status_code, exc.detail, exc.headers)


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _reason(exc.status_code)
    headers: dict[str, Any] | None = getattr(exc, "headers", None)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "There is nothing at this address."
    return render_error(request, exc.status_code, detail, headers)


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return render_error(request, 422, _describe_validation(exc))


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    if is_disk_full(exc):
        return render_error(request, 507, "The server's disk is full.")
    if is_busy(exc):
        logger.warning("The catalog was busy: %r", exc)
        return render_error(
            request, 503, "The server is busy; please try again shortly.", {"Retry-After": "1"}
        )
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every known failure into a JSON or HTML answer."""
    app.add_exception_handler(StreamportError, _handle_streamport_error)
    app.add_exception_handler(DBAPIError, _handle_database_error)
    app.add_exception_handler(PoolTimeout, _handle_database_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
