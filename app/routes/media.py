"""``/media/{id}/stream`` and ``/download``: the stored bytes, with ranges."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from app import catalog
from app.db import SessionmakerDep
from app.dependencies import StorageDep
from app.http_semantics import (
    Representation,
    content_disposition,
    decide,
    http_date,
    strong_etag,
)
from app.streaming import StoredBytesResponse

router = APIRouter()

# Stored bytes never change under an id (a new upload gets a new id), but a rename changes
# the download name and a delete must take effect: let caches keep bytes, revalidating.
_CACHE_CONTROL = "public, max-age=0, must-revalidate"
# Uploaded HTML or SVG must never run as our origin's script.
_SANDBOX = (
    "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
)


@router.get("/media/{media_id}/stream", name="stream_media", response_class=Response)
@router.head("/media/{media_id}/stream", include_in_schema=False)
async def stream_media(
    media_id: str, request: Request, sessionmaker: SessionmakerDep, storage: StorageDep
) -> Response:
    """The bytes for players: ``Content-Disposition: inline``."""
    return await _serve_bytes(media_id, request, sessionmaker, storage, "inline")


@router.get("/media/{media_id}/download", name="download_media", response_class=Response)
@router.head("/media/{media_id}/download", include_in_schema=False)
async def download_media(
    media_id: str, request: Request, sessionmaker: SessionmakerDep, storage: StorageDep
) -> Response:
    """The bytes as a file to save, under the original name."""
    return await _serve_bytes(media_id, request, sessionmaker, storage, "attachment")


async def _serve_bytes(
    media_id: str,
    request: Request,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    disposition: str,
) -> Response:
    # A short session: a download that runs for an hour must not hold a connection.
    async with sessionmaker() as session:
        media = await catalog.get_media(session, media_id)
    representation = Representation(
        size=media.size, etag=strong_etag(media.sha256), last_modified=media.created_at
    )
    decision = decide(request.method, request.headers, representation)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": representation.etag,
        "Last-Modified": http_date(representation.last_modified),
        "Cache-Control": _CACHE_CONTROL,
        "Content-Type": media.content_type,
        "Content-Disposition": content_disposition(disposition, media.filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _SANDBOX,
        **decision.headers,
    }
    if decision.status == 416:
        headers["Content-Length"] = "0"
        del headers["Content-Type"]
    return StoredBytesResponse(
        storage.path_for(media.storage_key),
        status_code=decision.status,
        headers=headers,
        span=decision.span,
        size=media.size,
        send_body=request.method == "GET" and decision.status in (200, 206),
    )
