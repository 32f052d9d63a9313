"""Share links: the API to create, list and delete them, the form fallbacks of the media
page, and ``/s/{token}``, the page a link opens."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from app import catalog
from app.accounts import shares
from app.catalog.models import Share
from app.errors import InvalidInput, ShareExpired
from app.web import media_changes
from app.web.dependencies import SessionDep, TemplatesDep, UserDep
from app.web.media_access import check_manage
from app.web.public_urls import absolute_url
from app.web.schemas import MediaOut, ShareCreate, ShareOut

router = APIRouter()

# The choices the media page offers, in seconds (None: never).
EXPIRY_CHOICES = {
    "1h": 3600,
    "1d": 86400,
    "7d": 7 * 86400,
    "30d": 30 * 86400,
    "never": None,
}


def share_out(request: Request, share: Share) -> ShareOut:
    token = shares.share_token(request.app.state.secret_key, share.id)
    return ShareOut(
        id=share.id,
        url=absolute_url(request, str(request.app.url_path_for("share_page", token=token))),
        media_id=share.media_id,
        note=share.note,
        created_at=share.created_at,
        expires_at=share.expires_at,
    )


@router.post("/api/media/{media_id}/shares", name="api_create_share", status_code=201)
async def create_share(
    media_id: str, body: ShareCreate, request: Request, caller: UserDep
) -> JSONResponse:
    """A share link for the media (its owner or an admin)."""
    share = await media_changes.share_media(
        request, media_id, expires_in_seconds=body.expires_in, note=body.note
    )
    out = share_out(request, share)
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.get("/api/media/{media_id}/shares", name="api_list_shares")
async def list_shares(
    media_id: str, request: Request, session: SessionDep, caller: UserDep
) -> list[ShareOut]:
    """The media's share links (its owner or an admin)."""
    check_manage(request, await catalog.get_media(session, media_id))
    return [share_out(request, share) for share in await shares.list_shares(session, media_id)]


@router.delete("/api/shares/{share_id}", name="api_delete_share", status_code=204)
async def delete_share(share_id: str, request: Request, caller: UserDep) -> Response:
    """Delete a share link: it stops working on every node within seconds."""
    await media_changes.unshare(request, share_id)
    return Response(status_code=204)


@router.post("/media/{media_id}/shares", name="create_share_form", include_in_schema=False)
async def create_share_form(
    media_id: str,
    request: Request,
    caller: UserDep,
    expires: Annotated[str, Form(max_length=16)] = "7d",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The media page's share form; back to the page, which lists the new link."""
    if expires not in EXPIRY_CHOICES:
        raise InvalidInput("Choose one of the offered expiry times.")
    await media_changes.share_media(
        request, media_id, expires_in_seconds=EXPIRY_CHOICES[expires], note=note
    )
    target = request.app.url_path_for("media_page", media_id=media_id)
    return RedirectResponse(f"{target}#shares", status_code=303)


@router.post("/shares/{share_id}/delete", name="delete_share_form", include_in_schema=False)
async def delete_share_form(share_id: str, request: Request, caller: UserDep) -> Response:
    media_id = await media_changes.unshare(request, share_id)
    target = request.app.url_path_for("media_page", media_id=media_id)
    return RedirectResponse(f"{target}#shares", status_code=303)


@router.get("/s/{token}", name="share_page", include_in_schema=False)
async def share_page(
    token: str, request: Request, session: SessionDep, templates: TemplatesDep
) -> Response:
    """What a share link opens: the media page, read-only, its player and download included."""
    found = await request.app.state.identities.share(token)
    if found is None:
        raise shares.ShareNotFound("This share link does not exist or has been deleted.")
    _, grant = found
    if grant.expired(datetime.now(UTC)):
        raise ShareExpired("This share link has expired. Ask the person who sent it for a new one.")
    media = await catalog.get_media(session, grant.media_id)
    out = MediaOut.from_media(media, request.app.router, share=token)
    return templates.TemplateResponse(
        request,
        "media.html",
        {
            "media": out,
            "kind": out.kind,
            "shared_view": True,
            "can_manage": False,
            "og_image": absolute_url(request, out.poster_url or out.thumbnail_url or ""),
            "og_url": absolute_url(request, str(request.url.path)),
        },
    )
