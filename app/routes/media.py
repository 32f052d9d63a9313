"""``/media/{id}/stream`` and ``/download``: the stored bytes, with ranges and conditions.

Plain Starlette routes, not FastAPI ones: these answer many small range requests per second,
and dependency solving would cost more than the answer itself.
"""

import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.http_semantics import DECISION_HEADERS, Representation, content_disposition, decide
from app.media_facts import lookup_media_facts
from app.streaming import StoredBytesResponse

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


async def stream_media(request: Request) -> Response:
    """The bytes for players: ``Content-Disposition: inline``."""
    return await _serve_bytes(request, "inline")


async def download_media(request: Request) -> Response:
    """The bytes as a file to save, under the original name."""
    return await _serve_bytes(request, "attachment")


async def _serve_bytes(request: Request, disposition: str) -> Response:
    state = request.app.state
    facts = await lookup_media_facts(
        state.sessionmaker, state.media_facts, request.path_params["media_id"]
    )
    representation = Representation(
        size=facts.size,
        sha256=facts.sha256,
        last_modified=facts.created_at,
        content_type=facts.content_type,
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
        new_boundary=_new_boundary,
        max_ranges=state.settings.max_ranges,
    )
    headers = {"Accept-Ranges": "bytes", **decision.headers}
    if decision.status in (200, 206, 304):
        headers["Cache-Control"] = _CACHE_CONTROL
    if decision.status in (200, 206):
        headers["Content-Disposition"] = content_disposition(disposition, facts.filename)
        headers.update(_CONTENT_SAFETY)
    return StoredBytesResponse(
        state.storage.path_for(facts.storage_key),
        status_code=decision.status,
        headers=headers,
        body=decision.body,
        budget=state.send_budget,
    )


def _new_boundary() -> str:
    return secrets.token_hex(16)


router = APIRouter(
    routes=[
        Route("/media/{media_id}/stream", stream_media, methods=["GET"], name="stream_media"),
        Route("/media/{media_id}/download", download_media, methods=["GET"], name="download_media"),
    ]
)
