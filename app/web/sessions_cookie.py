"""Setting and clearing the session cookie."""

from starlette.requests import Request
from starlette.responses import Response

from app.accounts.sessions import SESSION_DAYS
from app.web.access_guard import SESSION_COOKIE

# The browser keeps the cookie as long as the catalog keeps its session.
SESSION_COOKIE_SECONDS = SESSION_DAYS * 86400


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    """``HttpOnly`` (no script reads it), ``SameSite=Lax`` (not sent on other sites' posts),
    ``Secure`` behind HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_COOKIE_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookies,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookies,
    )
