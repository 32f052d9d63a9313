"""``/media/{id}/events``: a media's processing as Server-Sent Events.

Each stream takes its states from the process's ``ProgressHub``, which asks the catalog once
per interval for every stream together.
"""

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.catalog.models import FINAL_JOB_STATES
from app.processing import jobs
from app.web.dependencies import SessionmakerDep, client_address
from app.web.media_access import visible_media
from app.web.progress_hub import ProgressHub, Subscription

router = APIRouter()

KEEPALIVE_SECONDS = 15.0
# EventSource reconnects on its own; a bounded stream never pins a connection for good.
MAX_STREAM_SECONDS = 600.0


class _EventStream(StreamingResponse):
    """Releases its subscription however the stream ends, even if it never starts."""

    def __init__(self, hub: ProgressHub, subscription: Subscription) -> None:
        super().__init__(
            _processing_events(subscription),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.hub = hub
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.close(self.subscription)


@router.get("/media/{media_id}/events", name="media_events", response_class=StreamingResponse)
async def media_events(
    media_id: str, request: Request, sessionmaker: SessionmakerDep
) -> StreamingResponse:
    """``event: processing`` with ``{"state", "progress", "step", "error"}`` now and on every
    change, until the job ends. ``429`` past the per-client or per-process cap of streams."""
    async with sessionmaker() as session:
        # 404 for an unknown id and for one the caller may not see.
        media = await visible_media(request, session, media_id)
        current = jobs.snapshot(media.job)
    hub: ProgressHub = request.app.state.progress_hub
    return _EventStream(hub, hub.open(media_id, client_address(request), current))


async def _processing_events(subscription: Subscription) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    state = subscription.latest
    started = time.monotonic()
    while state is not None:
        yield f"event: processing\ndata: {json.dumps(state)}\n\n"
        if state["state"] in FINAL_JOB_STATES:
            return
        state = None
        while state is None:
            if time.monotonic() - started > MAX_STREAM_SECONDS:
                return
            state = await subscription.next_change(KEEPALIVE_SECONDS)
            if subscription.gone:
                return  # deleted: there is no state to tell (a reconnect gets 404)
            if state is None:
                yield ": keep-alive\n\n"
