"""Answers carrying bytes (originals, derived files, playlists): who may see them, how caches
keep them, and the RFC 9110 decision on ranges and conditions, shared by the byte routes."""

import secrets
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from app.catalog.facts import MediaFacts, lookup_media_facts
from app.errors import MediaNotFound
from app.serving.http_semantics import (
    DECISION_HEADERS,
    Representation,
    content_disposition,
    decide,
    strong_etag,
)
from app.serving.streaming import StoredBytesResponse
from app.storage import ByteSource
from app.web.media_access import access_to

# An original is never rewritten (processing makes separate derived files) and derived files
# never change under their key: caches may keep both for good.
_CACHE_FINAL = "public, max-age=31536000, immutable"
# Anything but public media is never stored by shared caches, so that a deleted, hidden or
# no longer shared media does not linger in a proxy; browsers revalidate (a cheap 304).
_CACHE_PRIVATE = "private, no-cache"
# Uploaded HTML or SVG must never run as this origin's script, nor be sniffed into it.
_CONTENT_SAFETY = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
    ),
}


async def facts_for(request: Request) -> MediaFacts:
    """The media's facts, if the request may see it (else ``MediaNotFound``, as unknown)."""
    state = request.app.state
    media_id = request.path_params["media_id"]
    facts = await lookup_media_facts(state.sessionmaker, state.media_facts, media_id)
    await access_to(request, media_id, facts.owner_id, facts.visibility)
    return facts


def cache_control_for(facts: MediaFacts) -> str:
    return _CACHE_FINAL if facts.visibility == "public" else _CACHE_PRIVATE


def answer_bytes(
    request: Request,
    source: ByteSource,
    representation: Representation,
    cache_control: str,
    disposition: str,
) -> Response:
    state = request.app.state
    request_headers = {
        name: ", ".join(request.headers.getlist(name))
        for name in DECISION_HEADERS
        if name in request.headers
    }
    decision = decide(
        request.method,
        request_headers,
        representation,
        new_boundary=_new_boundary,
        max_ranges=state.settings.max_ranges,
        now=datetime.now(UTC),
    )
    headers = {"Accept-Ranges": "bytes", **decision.headers}
    if decision.status in (200, 206, 304):
        headers["Cache-Control"] = cache_control
    if decision.status in (200, 206):
        headers["Content-Disposition"] = disposition
        headers.update(_CONTENT_SAFETY)
    return StoredBytesResponse(
        source,
        status_code=decision.status,
        headers=headers,
        body=decision.body,
        budget=state.send_budget,
    )


def _new_boundary() -> str:
    return secrets.token_hex(16)


async def serve_derived(
    request: Request, facts: MediaFacts, key: str | None, content_type: str, filename: str
) -> Response:
    if key is None:
        raise MediaNotFound("This media has no such derived file (yet).")
    state = request.app.state
    try:
        info = await state.object_info.info(key)
    except FileNotFoundError:
        raise MediaNotFound("This derived file is gone.") from None
    # Derived files never change under their key, and their URLs carry the key: the key is
    # a strong validator, and caches may keep them for good.
    representation = Representation(
        size=info.size,
        etag=strong_etag(key.rpartition("/")[2]),
        last_modified=info.modified_at,
        content_type=content_type,
    )
    disposition = content_disposition("inline", filename)
    source = state.storage.source(key)
    return answer_bytes(request, source, representation, cache_control_for(facts), disposition)
