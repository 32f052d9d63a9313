"""The response that sends stored bytes: a body plan of file spans and framing bytes, read in
fixed chunks, stopped as soon as the client leaves."""

from collections.abc import Sequence
from pathlib import Path

import aiofiles
import anyio
from aiofiles.threadpool.binary import AsyncFileIO
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.byte_ranges import BodyPart, ByteRange

CHUNK_BYTES = 1024 * 1024


class StoredBytesResponse(Response):
    """Sends the headers, then each part of ``body`` in order; nothing more for an empty body."""

    def __init__(
        self,
        path: Path,
        *,
        status_code: int,
        headers: dict[str, str],
        body: Sequence[BodyPart],
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.path = path
        self.status_code = status_code
        self.body_plan = body
        self.chunk_bytes = chunk_bytes
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.body_plan:
            await send(self._start_message())
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        try:
            handle = await aiofiles.open(self.path, "rb", buffering=0)
        except FileNotFoundError:
            # The row was found but its bytes are gone (deleted meanwhile): nothing to send.
            gone = Response("The bytes of this media are gone.", status_code=404)
            await gone(scope, receive, send)
            return
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
                await send(self._start_message())
                await self._send_body(handle, send)
                tasks.cancel_scope.cancel()
        finally:
            # A disconnect cancels the body; an unshielded awaited close would be cancelled
            # with it and leak the descriptor.
            with anyio.CancelScope(shield=True):
                await handle.close()

    def _start_message(self) -> Message:
        return {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }

    async def _send_body(self, handle: AsyncFileIO, send: Send) -> None:
        last = len(self.body_plan) - 1
        for index, part in enumerate(self.body_plan):
            if isinstance(part, bytes):
                await send({"type": "http.response.body", "body": part, "more_body": index < last})
            else:
                await self._send_span(handle, part, send, more_after=index < last)

    async def _send_span(
        self, handle: AsyncFileIO, span: ByteRange, send: Send, *, more_after: bool
    ) -> None:
        await handle.seek(span.start)
        remaining = span.length
        while remaining > 0:
            chunk = await handle.read(min(self.chunk_bytes, remaining))
            if not chunk:
                raise RuntimeError(f"{self.path} is shorter than its catalog size")
            remaining -= len(chunk)
            more = remaining > 0 or more_after
            await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
