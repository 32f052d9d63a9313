"""FastAPI dependencies for what ``create_app`` put on ``app.state``.

They are ``async`` although they never await: FastAPI runs a plain ``def`` dependency in a
thread, a hop that costs more than the whole lookup.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.passwords import sign_in_slot
from app.accounts.policy import Caller
from app.config import Settings
from app.errors import Forbidden, NotSignedIn
from app.storage import Storage
from app.web import forwarded
from app.web.access_guard import caller_of


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_storage(request: Request) -> Storage:
    return request.app.state.storage


async def get_templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


# A catalog row id in a path: the catalog's ids are 32-bit integers (PostgreSQL's INTEGER),
# and a larger number must be a clear 422, not an overflow in the driver.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]

SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """The application's session factory, for routes that open short sessions themselves."""
    return request.app.state.sessionmaker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; handlers commit explicitly before they return."""
    async with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_caller(request: Request) -> Caller | None:
    """The signed-in user making the request, or None."""
    return caller_of(request.scope)


async def require_user(request: Request) -> Caller:
    """The signed-in user; ``NotSignedIn`` (401, or the login page for a page) otherwise."""
    caller = caller_of(request.scope)
    if caller is None:
        raise NotSignedIn()
    return caller


async def require_admin(request: Request) -> Caller:
    """A signed-in admin; 403 for members."""
    caller = await require_user(request)
    if not caller.is_admin:
        raise Forbidden("Only admins may do this.")
    return caller


CallerDep = Annotated[Caller | None, Depends(get_caller)]
UserDep = Annotated[Caller, Depends(require_user)]
AdminDep = Annotated[Caller, Depends(require_admin)]


async def hold_sign_in_slot() -> AsyncIterator[None]:
    """A place among the process's sign-ins for the whole request (``ServerBusy`` if none)."""
    with sign_in_slot():
        yield


SignInSlotDep = Depends(hold_sign_in_slot)


def client_address(request: Request) -> str:
    """The client's address, for the audit log and throttling: the peer's, or the one a
    trusted proxy (``STREAMPORT_TRUSTED_PROXIES``) says it was reached from."""
    peer = request.client.host if request.client else ""
    trusted = request.app.state.settings.trusted_networks
    if not trusted:
        return peer
    return forwarded.client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)
