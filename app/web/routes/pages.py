"""The HTML pages: catalog, upload form, media page, rename and delete forms."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app import catalog
from app.catalog.room import write_with_room
from app.errors import StreamportError, UploadAborted
from app.ingest.removal import remove_media
from app.web.dependencies import SessionDep, SettingsDep, StorageDep, TemplatesDep
from app.web.schemas import MediaOut, Title
from app.web.upload_requests import store_uploaded_files

# HTML pages are for people; /docs documents the JSON API and the byte endpoints.
router = APIRouter(include_in_schema=False)

CATALOG_PER_PAGE = 24


@router.get("/", name="catalog")
async def catalog_page(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    q: Annotated[str, Query(max_length=500)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The catalog, newest first."""
    result = await catalog.list_media(session, q=q.strip(), page=page, per_page=CATALOG_PER_PAGE)
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
async def upload_form(request: Request, templates: TemplatesDep, settings: SettingsDep) -> Response:
    """The upload form."""
    return _render_upload_form(request, templates, settings)


@router.post("/upload", name="upload_submit")
async def upload_submit(
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    """Store the files of the form, then show the new media (or the catalog for several)."""
    try:
        stored = await store_uploaded_files(request, session, storage, settings)
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
        {"error": error, "title": "", "max_upload_bytes": settings.max_upload_bytes},
        status_code=status_code,
    )


@router.get("/media/{media_id}", name="media_page")
async def media_page(
    media_id: str, request: Request, session: SessionDep, templates: TemplatesDep
) -> Response:
    """One media: player, details, rename and delete."""
    media = MediaOut.from_media(await catalog.get_media(session, media_id), request.app.router)
    return templates.TemplateResponse(request, "media.html", {"media": media, "kind": media.kind})


@router.post("/media/{media_id}/rename", name="rename_media_form")
async def rename_media_form(
    media_id: str, title: Annotated[Title, Form()], request: Request
) -> Response:
    """Rename from the media page, then show it again."""
    state = request.app.state
    await write_with_room(
        state.sessionmaker,
        state.catalog_ballast,
        lambda session: catalog.rename_media(session, media_id, title),
    )
    target = request.app.url_path_for("media_page", media_id=media_id)
    return RedirectResponse(str(target), status_code=303)


@router.post("/media/{media_id}/delete", name="delete_media_form")
async def delete_media_form(media_id: str, request: Request, storage: StorageDep) -> Response:
    """Delete from the media page, then show the catalog."""
    state = request.app.state
    await remove_media(
        state.sessionmaker, state.catalog_ballast, storage, state.media_facts, media_id
    )
    return RedirectResponse(str(request.app.url_path_for("catalog")), status_code=303)
