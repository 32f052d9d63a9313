"""``/media/{id}/events``: a media's processing as Server-Sent Events."""

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app import catalog
from app.catalog.models import FINAL_JOB_STATES
from app.processing import jobs
from app.web.dependencies import SessionmakerDep

router = APIRouter()

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
# EventSource reconnects on its own; a bounded stream never pins a connection for good.
MAX_STREAM_SECONDS = 600.0


@router.get("/media/{media_id}/events", name="media_events", response_class=StreamingResponse)
async def media_events(
    media_id: str, request: Request, sessionmaker: SessionmakerDep
) -> StreamingResponse:
    """``event: processing`` with ``{"state", "progress", "step", "error"}`` now and on every
    change, until the job ends."""
    async with sessionmaker() as session:
        await catalog.get_media(session, media_id)  # 404 for an unknown id
    return StreamingResponse(
        _processing_events(sessionmaker, media_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _processing_events(sessionmaker: SessionmakerDep, media_id: str) -> AsyncIterator[str]:
    # The job row is the truth, whichever process runs the job: poll it, send changes.
    started = last_sent = time.monotonic()
    previous: dict[str, object] | None = None
    yield "retry: 2000\n\n"
    while time.monotonic() - started < MAX_STREAM_SECONDS:
        async with sessionmaker() as session:
            job = await jobs.get_job(session, media_id)
        current = jobs.snapshot(job)
        if current != previous:
            yield f"event: processing\ndata: {json.dumps(current)}\n\n"
            previous, last_sent = current, time.monotonic()
        if current["state"] in FINAL_JOB_STATES:
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)
