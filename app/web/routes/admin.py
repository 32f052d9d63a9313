"""The admin pages: users (add, disable, enable, reset a password, make admin) and the audit
log."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.accounts import audit, users
from app.accounts.passwords import check_password_rules, hash_password
from app.errors import InvalidInput, StreamportError
from app.web.dependencies import AdminDep, RowId, SessionDep, TemplatesDep, client_address

router = APIRouter(include_in_schema=False)

_MAX_FIELD = 1024
AUDIT_PER_PAGE = 100


async def _render_users(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    *,
    error: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        "admin_users.html",
        {"users": await users.list_users(session), "error": error, "message": message},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def _back(request: Request) -> Response:
    return RedirectResponse(str(request.app.url_path_for("admin_users")), status_code=303)


@router.get("/admin/users", name="admin_users")
async def admin_users(
    request: Request, templates: TemplatesDep, session: SessionDep, caller: AdminDep
) -> Response:
    """Every account."""
    return await _render_users(request, templates, session)


@router.post("/admin/users", name="admin_add_user")
async def add_user(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    caller: AdminDep,
    username: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    is_admin: Annotated[bool, Form()] = False,
) -> Response:
    """Add an account with a first password (to hand over; they change it)."""
    try:
        check_password_rules(password)
        user = await users.add_user(
            session, username, await hash_password(password), is_admin=is_admin
        )
    except StreamportError as exc:
        await session.rollback()
        return await _render_users(
            request, templates, session, error=exc.detail, status_code=exc.status_code
        )
    audit.record(
        session,
        "user_add",
        caller=caller,
        address=client_address(request),
        target=user.username,
        detail="admin" if is_admin else "member",
    )
    await session.commit()
    return _back(request)


@router.post("/admin/users/{user_id}/{action}", name="admin_change_user")
async def change_user(
    user_id: RowId,
    action: str,
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    caller: AdminDep,
    password: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
) -> Response:
    """``disable``, ``enable``, ``make-admin``, ``make-member`` or ``password`` (reset)."""
    demotes = action in ("disable", "make-member")
    if demotes:
        await users.lock_active_admins(session)
    user = await users.get_user(session, user_id)
    try:
        if action == "disable":
            await users.set_disabled(session, user, True)
        elif action == "enable":
            await users.set_disabled(session, user, False)
        elif action == "make-admin":
            await users.set_admin(session, user, True)
        elif action == "make-member":
            await users.set_admin(session, user, False)
        elif action == "password":
            check_password_rules(password)
            await users.set_password(session, user, await hash_password(password))
        else:
            raise InvalidInput("Unknown action.")
        # Counted after the change, in its transaction: a concurrent demotion has either
        # committed (and is counted) or waits for this one.
        if demotes and await users.active_admins(session) == 0:
            raise InvalidInput("The last admin cannot be disabled or made a member.")
    except StreamportError as exc:
        await session.rollback()
        return await _render_users(
            request, templates, session, error=exc.detail, status_code=exc.status_code
        )
    audit.record(
        session,
        f"user_{action.replace('-', '_')}"[:32],
        caller=caller,
        address=client_address(request),
        target=user.username,
    )
    await session.commit()
    request.app.state.identities.forget_everyone()
    return _back(request)


@router.get("/admin/audit", name="admin_audit")
async def audit_log(
    request: Request,
    templates: TemplatesDep,
    session: SessionDep,
    caller: AdminDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Who did what, newest first."""
    events, total = await audit.list_events(session, page, AUDIT_PER_PAGE)
    return templates.TemplateResponse(
        request,
        "admin_audit.html",
        {
            "events": events,
            "page": page,
            "pages": max(1, -(-total // AUDIT_PER_PAGE)),
            "total": total,
        },
        headers={"Cache-Control": "no-store"},
    )
