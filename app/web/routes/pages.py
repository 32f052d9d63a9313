"""The HTML pages: catalog, upload form, media page, rename and delete forms."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app import catalog
from app.accounts import shares
from app.accounts.policy import Access, listed_owner, media_access
from app.errors import StreamportError, UploadAborted
from app.web import media_changes
from app.web.dependencies import (
    CallerDep,
    SessionDep,
    SettingsDep,
    StorageDep,
    TemplatesDep,
    UserDep,
)
from app.web.media_access import visible_media
from app.web.routes.shares import EXPIRY_CHOICES, share_out
from app.web.schemas import MediaOut, Title, Visibility
from app.web.upload_requests import store_uploaded_files

# HTML pages are for people; /docs documents the JSON API and the byte endpoints.
router = APIRouter(include_in_schema=False)

CATALOG_PER_PAGE = 24


@router.get("/", name="catalog")
async def catalog_page(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    caller: CallerDep,
    q: Annotated[str, Query(max_length=500)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The catalog, newest first: public media and the caller's own."""
    result = await catalog.list_media(
        session,
        q=q.strip(),
        page=page,
        per_page=CATALOG_PER_PAGE,
        also_owner_id=listed_owner(caller),
    )
    return templates.TemplateResponse(
        request,
        "catalog.html",
        {
            "items": [MediaOut.from_media(m, request.app.router) for m in result.items],
            "q": q.strip(),
            "page": result.page,
            "pages": result.pages,
            "total": result.total,
            "per_page": result.per_page,
        },
    )


@router.get("/upload", name="upload_form")
async def upload_form(
    request: Request, templates: TemplatesDep, settings: SettingsDep, caller: UserDep
) -> Response:
    """The upload form."""
    return _render_upload_form(request, templates, settings)


@router.post("/upload", name="upload_submit")
async def upload_submit(
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    caller: UserDep,
) -> Response:
    """Store the files of the form, then show the new media (or the catalog for several)."""
    try:
        stored = await store_uploaded_files(request, session, storage, settings, caller)
    except UploadAborted:
        raise
    except StreamportError as exc:
        return _render_upload_form(request, templates, settings, exc.detail, exc.status_code)
    if len(stored) == 1:
        target = request.app.url_path_for("media_page", media_id=stored[0].id)
    else:
        target = request.app.url_path_for("catalog")
    return RedirectResponse(str(target), status_code=303)


def _render_upload_form(
    request: Request,
    templates: TemplatesDep,
    settings: SettingsDep,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        "upload.html",
        {
            "error": error,
            "title": "",
            "max_upload_bytes": settings.max_upload_bytes,
            "default_visibility": settings.default_visibility,
        },
        status_code=status_code,
    )


@router.get("/media/{media_id}", name="media_page")
async def media_page(
    media_id: str,
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    caller: CallerDep,
) -> Response:
    """One media: player, details; for its owner or an admin, rename, visibility, sharing
    and delete."""
    media = await visible_media(request, session, media_id)
    can_manage = media_access(caller, media.owner_id, media.visibility) is Access.MANAGE
    links = []
    if can_manage:
        links = [share_out(request, share) for share in await shares.list_shares(session, media_id)]
    out = MediaOut.from_media(media, request.app.router)
    return templates.TemplateResponse(
        request,
        "media.html",
        {
            "media": out,
            "kind": out.kind,
            "can_manage": can_manage,
            "shares": links,
            "expiry_choices": list(EXPIRY_CHOICES),
            "shared_view": False,
        },
    )


@router.post("/media/{media_id}/rename", name="rename_media_form")
async def rename_media_form(
    media_id: str, title: Annotated[Title, Form()], request: Request, caller: UserDep
) -> Response:
    """Rename from the media page, then show it again."""
    await media_changes.update_media(request, media_id, title=title, visibility=None)
    target = request.app.url_path_for("media_page", media_id=media_id)
    return RedirectResponse(str(target), status_code=303)


@router.post("/media/{media_id}/visibility", name="visibility_media_form")
async def visibility_media_form(
    media_id: str,
    visibility: Annotated[Visibility, Form()],
    request: Request,
    caller: UserDep,
) -> Response:
    """Change who may see the media, then show its page again."""
    await media_changes.update_media(request, media_id, title=None, visibility=visibility)
    target = request.app.url_path_for("media_page", media_id=media_id)
    return RedirectResponse(str(target), status_code=303)


@router.post("/media/{media_id}/delete", name="delete_media_form")
async def delete_media_form(media_id: str, request: Request, caller: UserDep) -> Response:
    """Delete from the media page, then show the catalog."""
    await media_changes.delete_media(request, media_id)
    return RedirectResponse(str(request.app.url_path_for("catalog")), status_code=303)
