"""Which media a request may reach: the caller's own rights, or a share link it carries
(``?share=``). Every page, API route, byte URL and event stream goes through here, and so
through ``accounts.policy.media_access``; what a caller may not see is ``MediaNotFound``."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app import catalog
from app.accounts.identity import Identities
from app.accounts.policy import Access, media_access
from app.catalog.models import Media
from app.errors import Forbidden, MediaNotFound, NotSignedIn
from app.web.access_guard import caller_of

SHARE_PARAM = "share"


async def shared_media_id(request: Request) -> str | None:
    """The media the request's share link opens, if it carries a valid, unexpired one."""
    token = request.query_params.get(SHARE_PARAM)
    if not token:
        return None
    identities: Identities = request.app.state.identities
    found = await identities.share(token)
    if found is None:
        return None
    _, grant = found
    return None if grant.expired(datetime.now(UTC)) else grant.media_id


async def access_to(
    request: Request, media_id: str, owner_id: int | None, visibility: str
) -> Access:
    """The request's access to a media; ``MediaNotFound`` when it has none."""
    shared = False
    # Most requests carry no query at all: no parsing for them.
    if request.scope.get("query_string") and SHARE_PARAM in request.query_params:
        shared = media_id == await shared_media_id(request)
    access = media_access(caller_of(request.scope), owner_id, visibility, shared=shared)
    if access is Access.NONE:
        raise MediaNotFound()
    return access


async def visible_media(request: Request, session: AsyncSession, media_id: str) -> Media:
    """The media, if the request may see it; ``MediaNotFound`` otherwise."""
    media = await catalog.get_media(session, media_id)
    await access_to(request, media.id, media.owner_id, media.visibility)
    return media


def check_manage(request: Request, media: Media) -> None:
    """Raise unless the caller may change ``media``: 404 if they may not even see it, 401
    when signed out, 403 when it is someone else's."""
    caller = caller_of(request.scope)
    access = media_access(caller, media.owner_id, media.visibility)
    if access is Access.MANAGE:
        return
    if access is Access.NONE:
        raise MediaNotFound()
    if caller is None:
        raise NotSignedIn()
    raise Forbidden("Only its owner or an admin may change this media.")
