"""Signing in and out, and the first start's setup page."""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.accounts import audit, sessions, setup, throttle, users
from app.accounts.passwords import (
    check_password_rules,
    hash_password,
    verify_password,
)
from app.accounts.policy import Caller
from app.catalog.models import User
from app.errors import InvalidInput, ServerBusy, StreamportError, TooManyAttempts
from app.web.access_guard import caller_of
from app.web.dependencies import SessionDep, SignInSlotDep, TemplatesDep, client_address
from app.web.sessions_cookie import clear_session_cookie, set_session_cookie

router = APIRouter(include_in_schema=False)

_MAX_FIELD = 1024


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (no ``//host`` or scheme)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ch in target for ch in "\r\n\t"):
        return "/"
    return target


@router.get("/login", name="login_form")
async def login_form(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    next: Annotated[str, Query(max_length=2000)] = "/",
) -> Response:
    """The sign-in form."""
    no_accounts = await users.count_users(session) == 0
    return templates.TemplateResponse(
        request,
        "login.html",
        {"next": safe_next(next), "error": None, "username": "", "no_accounts": no_accounts},
    )


@router.post("/login", name="login_submit", dependencies=[SignInSlotDep])
async def login_submit(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    username: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password; on success a new session (any older one of this browser ends)."""
    address = client_address(request)
    name_key = users.username_key(username.strip())
    account_key = throttle.account_key(name_key)
    address_key = throttle.address_key(address)

    def form_again(error: str, status_code: int, headers: dict[str, str] | None = None) -> Response:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"next": safe_next(next), "error": error, "username": username, "no_accounts": False},
            status_code=status_code,
            headers=headers,
        )

    try:
        # Counted (and committed, for every worker to see) before the slow check.
        attempt = await throttle.admit(session, account_key, address_key)
    except TooManyAttempts as exc:
        return form_again(exc.detail, exc.status_code, exc.headers)
    user = await users.find_user(session, username.strip()) if username.strip() else None
    # No catalog connection is held while the hash is computed or waits for its turn.
    await session.commit()
    try:
        password_ok = await verify_password(user.password_hash if user else None, password)
    except ServerBusy:
        await throttle.take_back(session, attempt)
        raise
    if user is None or not password_ok or user.disabled:
        audit.record(
            session,
            "login_failed",
            caller=None,
            address=address,
            username=username.strip()[:64],
            detail="account disabled" if user is not None and password_ok else "",
        )
        await session.commit()
        return form_again("Wrong user name or password.", 401)
    await throttle.forgive(session, account_key, attempt)
    response = RedirectResponse(safe_next(next), status_code=303)
    await sign_in(request, session, user, response)
    return response


async def sign_in(
    request: Request,
    session: SessionDep,
    user: User,
    response: Response,
    *,
    forget_everyone: bool = False,
) -> None:
    """A fresh session for ``user`` (rotated: the browser's old one, if any, ends), committed
    with whatever else the session holds; ``forget_everyone`` after a change that ended other
    sessions too."""
    previous = caller_of(request.scope)
    if previous is not None and previous.session_id is not None:
        await sessions.end_session(session, previous.session_id)
    cookie, _ = await sessions.start_session(
        session,
        request.app.state.secret_key,
        user,
        address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    audit.record(
        session,
        "login",
        caller=Caller(user.id, user.username, user.is_admin),
        address=client_address(request),
    )
    await session.commit()
    # Forgotten once committed: a request in between would cache the old rows again.
    identities = request.app.state.identities
    if previous is not None and previous.session_id is not None:
        identities.forget_session(previous.session_id)
    if forget_everyone:
        identities.forget_everyone()
    set_session_cookie(request, response, cookie)


@router.post("/logout", name="logout")
async def logout(request: Request, session: SessionDep) -> Response:
    """End this browser's session on every node."""
    caller = caller_of(request.scope)
    response = RedirectResponse("/", status_code=303)
    if caller is not None and caller.session_id is not None:
        await sessions.end_session(session, caller.session_id)
        audit.record(session, "logout", caller=caller, address=client_address(request))
        await session.commit()
        request.app.state.identities.forget_session(caller.session_id)
    clear_session_cookie(request, response)
    return response


@router.get("/setup", name="setup_form")
async def setup_form(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    token: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The first admin's form, for whoever has the token ``serve`` printed."""
    if not await setup.setup_token_valid(session, token):
        return _setup_closed(request, templates, await users.count_users(session) > 0)
    return templates.TemplateResponse(
        request, "setup.html", {"token": token, "error": None, "username": ""}
    )


@router.post("/setup", name="setup_submit")
async def setup_submit(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    token: Annotated[str, Form(max_length=128)] = "",
    username: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    password_again: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
) -> Response:
    """Create the first admin and sign them in; the token is used up."""
    if not await setup.setup_token_valid(session, token):
        return _setup_closed(request, templates, await users.count_users(session) > 0)
    try:
        if password != password_again:
            raise InvalidInput("The two passwords differ.")
        check_password_rules(password)
        users.clean_username(username)
    except StreamportError as exc:
        return templates.TemplateResponse(
            request,
            "setup.html",
            {"token": token, "error": exc.detail, "username": username},
            status_code=exc.status_code,
        )
    password_hash = await hash_password(password)
    if not await setup.consume_setup_token(session, token):
        await session.rollback()
        return _setup_closed(request, templates, True)
    user = await users.add_user(session, username, password_hash, is_admin=True)
    audit.record(
        session,
        "user_add",
        caller=None,
        address=client_address(request),
        username=user.username,
        target=user.username,
        detail="first admin, from the setup page",
    )
    response = RedirectResponse("/", status_code=303)
    await sign_in(request, session, user, response)
    return response


def _setup_closed(request: Request, templates: TemplatesDep, done: bool) -> Response:
    detail = (
        "Setup is finished: sign in with your account."
        if done
        else "Open the setup link that `streamport serve` printed on its console."
    )
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status_code": 403, "reason": "Forbidden", "detail": detail},
        status_code=403,
    )
