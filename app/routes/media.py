"""``/media/{id}/stream`` and ``/download``: the stored bytes, with ranges."""

import secrets

from fastapi import APIRouter, Request
from starlette.responses import Response

from app import catalog
from app.db import SessionmakerDep
from app.dependencies import SettingsDep, StorageDep
from app.http_semantics import DECISION_HEADERS, Representation, content_disposition, decide
from app.streaming import StoredBytesResponse

router = APIRouter()

# The bytes under an id never change (a new upload gets a new id), so caches may keep them;
# the strong ETag still lets any client revalidate.
_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Uploaded HTML or SVG must never run as this origin's script, nor be sniffed into it.
_CONTENT_SAFETY = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
    ),
}


@router.get("/media/{media_id}/stream", name="stream_media", response_class=Response)
@router.head("/media/{media_id}/stream", include_in_schema=False)
async def stream_media(
    media_id: str,
    request: Request,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """The bytes for players: ``Content-Disposition: inline``."""
    return await _serve_bytes(media_id, request, sessionmaker, storage, settings, "inline")


@router.get("/media/{media_id}/download", name="download_media", response_class=Response)
@router.head("/media/{media_id}/download", include_in_schema=False)
async def download_media(
    media_id: str,
    request: Request,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """The bytes as a file to save, under the original name."""
    return await _serve_bytes(media_id, request, sessionmaker, storage, settings, "attachment")


async def _serve_bytes(
    media_id: str,
    request: Request,
    sessionmaker: SessionmakerDep,
    storage: StorageDep,
    settings: SettingsDep,
    disposition: str,
) -> Response:
    # A short session: a download that runs for an hour must not hold a connection.
    async with sessionmaker() as session:
        media = await catalog.get_media(session, media_id)
    representation = Representation(
        size=media.size,
        sha256=media.sha256,
        last_modified=media.created_at,
        content_type=media.content_type,
    )
    request_headers = {
        name: ", ".join(request.headers.getlist(name))
        for name in DECISION_HEADERS
        if name in request.headers
    }
    decision = decide(
        request.method,
        request_headers,
        representation,
        boundary=secrets.token_hex(16),
        max_ranges=settings.max_ranges,
    )
    headers = {"Accept-Ranges": "bytes", **decision.headers}
    if decision.status in (200, 206, 304):
        headers["Cache-Control"] = _CACHE_CONTROL
    if decision.status in (200, 206):
        headers["Content-Disposition"] = content_disposition(disposition, media.filename)
        headers.update(_CONTENT_SAFETY)
    return StoredBytesResponse(
        storage.path_for(media.storage_key),
        status_code=decision.status,
        headers=headers,
        body=decision.body,
    )
