"""``/media/{id}/hls/…``: adaptive streaming. The master playlist and each rendition's media
playlist are written per request from the catalog (so that every URI in them carries the
request's share link, if any); the rendition files are stored fragmented MP4s whose segments
players fetch as byte ranges, through the same engine as every other stored byte.

Plain Starlette routes, as in ``media``: players fetch a segment every few seconds.
"""

import hashlib
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.catalog.facts import MediaFacts
from app.catalog.renditions import RenditionFacts, rendition_playlist
from app.errors import MediaNotFound
from app.processing.hls import Variant, render_master_playlist, render_media_playlist
from app.serving.http_semantics import Representation, content_disposition, strong_etag
from app.storage.in_memory import InMemorySource
from app.storage.keys import url_version
from app.web.byte_answers import answer_bytes, facts_for, serve_derived
from app.web.media_access import SHARE_PARAM

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# Playlists are small and name files that change when a video is processed again: players
# and caches ask again each time (a 304 while nothing changed).
_PLAYLIST_CACHE = "private, no-cache"


async def master_playlist(request: Request) -> Response:
    """Every rendition with its peak and average bit rate, size and codecs (RFC 8216)."""
    facts = await facts_for(request)
    if not facts.renditions:
        raise MediaNotFound("This video has no adaptive stream (yet).")
    variants = [
        Variant(
            uri=f"{rendition.height}.m3u8{_query(request, rendition)}",
            bandwidth=rendition.bandwidth,
            average_bandwidth=rendition.average_bandwidth,
            width=rendition.width,
            height=rendition.height,
            codecs=rendition.codecs,
        )
        for rendition in facts.renditions
    ]
    return _playlist(request, render_master_playlist(variants), "master.m3u8")


async def media_playlist(request: Request) -> Response:
    """One rendition's segments: byte ranges of its file."""
    facts = await facts_for(request)
    rendition = _rendition(request, facts)
    async with request.app.state.sessionmaker() as session:
        template = await rendition_playlist(session, rendition.storage_key)
    if template is None:  # processed again meanwhile: the player reloads the master
        raise MediaNotFound("This rendition is gone.")
    uri = f"{rendition.height}.mp4{_query(request, rendition)}"
    return _playlist(request, render_media_playlist(template, uri), f"{rendition.height}.m3u8")


async def rendition_file(request: Request) -> Response:
    """The fragmented MP4 of one rendition, for its segments' byte ranges."""
    facts = await facts_for(request)
    rendition = _rendition(request, facts)
    name = f"{rendition.height}p.mp4"
    return await serve_derived(request, facts, rendition.storage_key, "video/mp4", name)


def _rendition(request: Request, facts: MediaFacts) -> RenditionFacts:
    height = request.path_params["height"]
    for rendition in facts.renditions:
        if rendition.height == height:
            return rendition
    raise MediaNotFound("This video has no such rendition.")


def _query(request: Request, rendition: RenditionFacts) -> str:
    """``?v=`` (the file's key: a new file is a new URL) and the request's share link."""
    params = {"v": url_version(rendition.storage_key)}
    share = request.query_params.get(SHARE_PARAM)
    if share:
        params[SHARE_PARAM] = share
    return "?" + urlencode(params)


def _playlist(request: Request, text: str, filename: str) -> Response:
    body = text.encode()
    representation = Representation(
        size=len(body),
        etag=strong_etag(hashlib.sha256(body).hexdigest()[:32]),
        # Written now: a validator by date could call a re-processed video's playlist unchanged.
        last_modified=datetime.now(UTC),
        content_type=PLAYLIST_TYPE,
    )
    return answer_bytes(
        request,
        InMemorySource(body),
        representation,
        _PLAYLIST_CACHE,
        content_disposition("inline", filename),
    )


router = APIRouter(
    routes=[
        Route(
            "/media/{media_id}/hls/master.m3u8",
            master_playlist,
            methods=["GET"],
            name="media_hls_master",
        ),
        Route(
            "/media/{media_id}/hls/{height:int}.m3u8",
            media_playlist,
            methods=["GET"],
            name="media_hls_playlist",
        ),
        Route(
            "/media/{media_id}/hls/{height:int}.mp4",
            rendition_file,
            methods=["GET"],
            name="media_hls_file",
        ),
    ]
)
