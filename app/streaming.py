"""Responses that send stored bytes, in fixed chunks, and stop when the client leaves."""

from pathlib import Path

import aiofiles
import anyio
from aiofiles.threadpool.binary import AsyncFileIO
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.http_semantics import ByteRange

CHUNK_BYTES = 1024 * 1024


class StoredBytesResponse(Response):
    """Sends all of a file, or one span of it, or (for HEAD and 416) only the headers."""

    def __init__(
        self,
        path: Path,
        *,
        status_code: int,
        headers: dict[str, str],
        span: ByteRange | None,
        size: int,
        send_body: bool,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.path = path
        self.status_code = status_code
        self.span = span if span is not None else ByteRange(0, size - 1)
        self.send_body = send_body and self.span.length > 0
        self.chunk_bytes = chunk_bytes
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.send_body:
            await send(self._start_message())
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        try:
            handle = await aiofiles.open(self.path, "rb", buffering=0)
        except FileNotFoundError:
            # The row was found but its bytes are gone (deleted meanwhile): nothing to send.
            await Response("The bytes of this media are gone.", status_code=404)(
                scope, receive, send
            )
            return
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
                await send(self._start_message())
                await self._send_span(handle, send)
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

    async def _send_span(self, handle: AsyncFileIO, send: Send) -> None:
        await handle.seek(self.span.start)
        remaining = self.span.length
        while remaining > 0:
            chunk = await handle.read(min(self.chunk_bytes, remaining))
            if not chunk:
                raise RuntimeError(f"{self.path} is shorter than its catalog size")
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
