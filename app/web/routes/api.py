"""The JSON API under ``/api/`` and ``/healthz``."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app import catalog
from app.accounts.policy import listed_owner
from app.config import VISIBILITIES
from app.errors import InvalidInput
from app.web import media_changes
from app.web.dependencies import CallerDep, SessionDep, SettingsDep, StorageDep, UserDep
from app.web.media_access import visible_media
from app.web.schemas import Health, Me, MediaOut, MediaPage, MediaPatch, MediaUploaded
from app.web.upload_requests import store_uploaded_files

router = APIRouter()

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "title": {"type": "string"},
                        "visibility": {"enum": list(VISIBILITIES)},
                    },
                }
            }
        },
    }
}


@router.get("/api/media", name="api_list_media")
async def list_media(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    q: Annotated[str, Query(max_length=500)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MediaPage:
    """A page of the catalog, newest first, optionally searched: public media and the
    caller's own."""
    result = await catalog.list_media(
        session, q=q, page=page, per_page=per_page, also_owner_id=listed_owner(caller)
    )
    return MediaPage(
        items=[MediaOut.from_media(m, request.app.router) for m in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@router.post(
    "/api/media",
    name="api_upload_media",
    status_code=201,
    response_model=MediaUploaded,
    openapi_extra=_UPLOAD_BODY,
)
async def upload_media(
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    caller: UserDep,
) -> JSONResponse:
    """Store the files of a multipart upload (field ``file``, optional ``title`` and
    ``visibility``)."""
    stored = await store_uploaded_files(request, session, storage, settings, caller)
    items = [MediaOut.from_media(m, request.app.router) for m in stored]
    body = MediaUploaded(items=items)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=201,
        headers={"Location": str(request.app.url_path_for("api_get_media", media_id=stored[0].id))},
    )


@router.get("/api/media/{media_id}", name="api_get_media")
async def get_media(media_id: str, request: Request, session: SessionDep) -> MediaOut:
    """One media."""
    return MediaOut.from_media(await visible_media(request, session, media_id), request.app.router)


@router.patch("/api/media/{media_id}", name="api_rename_media")
async def rename_media(media_id: str, patch: MediaPatch, request: Request) -> MediaOut:
    """Change a media's title and/or visibility (its owner or an admin)."""
    if patch.title is None and patch.visibility is None:
        raise InvalidInput("Send a title, a visibility or both.")
    media = await media_changes.update_media(
        request, media_id, title=patch.title, visibility=patch.visibility
    )
    return MediaOut.from_media(media, request.app.router)


@router.delete("/api/media/{media_id}", name="api_delete_media", status_code=204)
async def delete_media(media_id: str, request: Request) -> Response:
    """Remove a media from the catalog and its bytes from storage (its owner or an admin)."""
    await media_changes.delete_media(request, media_id)
    return Response(status_code=204)


@router.get("/api/me", name="api_me")
async def me(caller: UserDep) -> Me:
    """Who the credential of the request signs in."""
    return Me(username=caller.username, is_admin=caller.is_admin)


@router.get("/healthz", name="healthz")
async def healthz() -> Health:
    """Liveness."""
    return Health()
