"""The account page: change the password, see and end sessions, create and revoke API
tokens."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.accounts import api_tokens, audit, sessions, throttle, users
from app.accounts.passwords import (
    check_password_rules,
    hash_password,
    verify_password,
)
from app.errors import InvalidInput, ServerBusy, StreamportError
from app.web.dependencies import (
    RowId,
    SessionDep,
    SignInSlotDep,
    TemplatesDep,
    UserDep,
    client_address,
)
from app.web.routes.auth import sign_in

router = APIRouter(include_in_schema=False)

_MAX_FIELD = 1024


async def _render(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    caller: UserDep,
    *,
    message: str | None = None,
    error: str | None = None,
    new_token: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return templates.TemplateResponse(
        request,
        "account.html",
        {
            "sessions": await sessions.list_sessions(session, caller.user_id),
            "tokens": await api_tokens.list_tokens(session, caller.user_id),
            "current_session": caller.session_id,
            "message": message,
            "error": error,
            "new_token": new_token,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


@router.get("/account", name="account_page")
async def account_page(
    request: Request, templates: TemplatesDep, session: SessionDep, caller: UserDep
) -> Response:
    """The signed-in user's account."""
    return await _render(request, templates, session, caller)


@router.post("/account/password", name="change_password", dependencies=[SignInSlotDep])
async def change_password(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    caller: UserDep,
    current_password: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    new_password: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    new_password_again: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
) -> Response:
    """A new password ends every session of the user; this browser is signed in afresh.
    Guesses of the current password (a stolen session trying to take the account over) count
    toward the same limits as sign-in's."""
    user = await users.get_user(session, caller.user_id)
    account_key = throttle.account_key(user.username_key)
    address_key = throttle.address_key(client_address(request))
    try:
        attempt = await throttle.admit(session, account_key, address_key)
        try:
            password_ok = await verify_password(user.password_hash, current_password)
        except ServerBusy:
            await throttle.take_back(session, attempt)
            raise
        if not password_ok:
            raise InvalidInput("The current password is wrong.")
        await throttle.forgive(session, account_key, attempt)
        await session.commit()
        if new_password != new_password_again:
            raise InvalidInput("The two new passwords differ.")
        check_password_rules(new_password)
    except StreamportError as exc:
        return await _render(
            request,
            templates,
            session,
            caller,
            error=exc.detail,
            status_code=exc.status_code,
            headers=exc.headers,
        )
    await users.set_password(session, user, await hash_password(new_password))
    audit.record(session, "password_change", caller=caller, address=client_address(request))
    response = RedirectResponse(str(request.app.url_path_for("account_page")), status_code=303)
    await sign_in(request, session, user, response, forget_everyone=True)
    return response


@router.post("/account/sessions/{session_id}/end", name="end_session")
async def end_session(
    session_id: str, request: Request, session: SessionDep, caller: UserDep
) -> Response:
    """End one of the user's sessions (another browser, or this one)."""
    if await sessions.end_user_session(session, caller.user_id, session_id[:64]):
        audit.record(session, "session_end", caller=caller, address=client_address(request))
        await session.commit()
        request.app.state.identities.forget_session(session_id[:64])
    return RedirectResponse(str(request.app.url_path_for("account_page")), status_code=303)


@router.post("/account/tokens", name="create_token")
async def create_token(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    caller: UserDep,
    label: Annotated[str, Form(max_length=api_tokens.LABEL_MAX_CHARS)] = "",
) -> Response:
    """A new API token, shown once on the page that answers."""
    user = await users.get_user(session, caller.user_id)
    secret, row = await api_tokens.create_token(session, user, label)
    audit.record(
        session, "token_create", caller=caller, address=client_address(request), detail=row.label
    )
    await session.commit()
    return await _render(
        request, templates, session, caller, new_token=secret, message="Token created."
    )


@router.post("/account/tokens/{token_id}/revoke", name="revoke_token")
async def revoke_token(
    token_id: RowId, request: Request, session: SessionDep, caller: UserDep
) -> Response:
    """Revoke one of the user's tokens: it stops working on every node within seconds."""
    row = await api_tokens.revoke_token(session, caller.user_id, token_id)
    if row is not None:
        audit.record(
            session,
            "token_revoke",
            caller=caller,
            address=client_address(request),
            detail=row.label,
        )
        await session.commit()
        request.app.state.identities.forget_token(row.token_hash)
    return RedirectResponse(str(request.app.url_path_for("account_page")), status_code=303)
