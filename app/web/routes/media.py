"""``/media/{id}/stream`` and ``/download``: the stored bytes, with ranges and conditions; and
the derived files processing makes (``/poster``, ``/thumbnail``, ``/playback``).

Plain Starlette routes, not FastAPI ones: these answer many small range requests per second,
and dependency solving would cost more than the answer itself.
"""

from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.serving.http_semantics import Representation, content_disposition, strong_etag
from app.web.byte_answers import answer_bytes, cache_control_for, facts_for, serve_derived


async def stream_media(request: Request) -> Response:
    """The bytes for players: ``Content-Disposition: inline``."""
    return await _serve_original(request, "inline")


async def download_media(request: Request) -> Response:
    """The bytes as a file to save, under the original name."""
    return await _serve_original(request, "attachment")


async def _serve_original(request: Request, disposition: str) -> Response:
    facts = await facts_for(request)
    representation = Representation(
        size=facts.size,
        etag=strong_etag(facts.sha256),
        last_modified=facts.modified_at,
        content_type=facts.content_type,
        sha256=facts.sha256,
    )
    return answer_bytes(
        request,
        request.app.state.storage.source(facts.storage_key),
        representation,
        cache_control_for(facts),
        content_disposition(disposition, facts.filename),
    )


async def poster(request: Request) -> Response:
    """The page-size poster frame of a video (JPEG)."""
    facts = await facts_for(request)
    return await serve_derived(request, facts, facts.poster_key, "image/jpeg", "poster.jpg")


async def thumbnail(request: Request) -> Response:
    """The catalog-size thumbnail of a video or image (JPEG)."""
    facts = await facts_for(request)
    return await serve_derived(request, facts, facts.thumbnail_key, "image/jpeg", "thumbnail.jpg")


async def playback(request: Request) -> Response:
    """The copy made for media browsers cannot play as uploaded: remuxed or transcoded, an
    MP4 (audio alone: an M4A)."""
    facts = await facts_for(request)
    audio = facts.content_type.startswith("audio/")
    name = f"{Path(facts.filename).stem}.{'m4a' if audio else 'mp4'}"
    content_type = "audio/mp4" if audio else "video/mp4"
    return await serve_derived(request, facts, facts.playback_key, content_type, name)


def _route(suffix: str, endpoint: object, name: str) -> Route:
    return Route(f"/media/{{media_id}}/{suffix}", endpoint, methods=["GET"], name=name)  # type: ignore[arg-type]


router = APIRouter(
    routes=[
        _route("stream", stream_media, "stream_media"),
        _route("download", download_media, "download_media"),
        _route("poster", poster, "media_poster"),
        _route("thumbnail", thumbnail, "media_thumbnail"),
        _route("playback", playback, "media_playback"),
    ]
)
