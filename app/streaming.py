"""The response that sends stored bytes: a body plan of file spans and framing bytes, read in
fixed chunks, stopped as soon as the client leaves."""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.byte_ranges import BodyPart, ByteRange

MIN_CHUNK_BYTES = 64 * 1024

# Positional reads need no seek and no shared file position: one executor hop per chunk.
_pread = aiofiles.os.wrap(os.pread)


def _read_spans(path: Path, spans: Sequence[ByteRange]) -> list[bytes]:
    """Open, read every span, close: one executor hop for a body that fits in a chunk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return [_pread_exactly(fd, span) for span in spans]
    finally:
        os.close(fd)


def _pread_exactly(fd: int, span: ByteRange) -> bytes:
    data = os.pread(fd, span.length, span.start)
    if len(data) != span.length:
        raise RuntimeError("a stored file is shorter than its catalog size")
    return data


_read_spans_off_loop = aiofiles.os.wrap(_read_spans)


class SendBudget:
    """Shares a per-process budget of bytes in flight among the bodies being streamed.

    Each streamed body holds about two chunks: one being read, one waiting in the socket's
    send buffer. One download gets the largest chunks (fewest reads and sends per GiB); many
    downloads get smaller ones, so memory stays bounded by the budget, not by clients × chunk.
    """

    def __init__(self, budget_bytes: int, max_chunk_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self.active_streams = 0

    def chunk_bytes(self) -> int:
        """The chunk size for the next read, given the streams running now."""
        share = self.budget_bytes // (2 * max(1, self.active_streams))
        return max(MIN_CHUNK_BYTES, min(self.max_chunk_bytes, share))

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Count one more body being streamed for as long as the block runs."""
        self.active_streams += 1
        try:
            yield
        finally:
            self.active_streams -= 1


class StoredBytesResponse(Response):
    """Sends the headers, then each part of ``body`` in order; nothing more for an empty body."""

    def __init__(
        self,
        path: Path,
        *,
        status_code: int,
        headers: dict[str, str],
        body: Sequence[BodyPart],
        budget: SendBudget,
    ) -> None:
        self.path = path
        self.status_code = status_code
        self.body_plan = body
        self.budget = budget
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        spans = [part for part in self.body_plan if isinstance(part, ByteRange)]
        try:
            if sum(span.length for span in spans) <= self.budget.chunk_bytes():
                await self._send_small(spans, send)
            else:
                with self.budget.streaming():
                    await self._send_large(receive, send)
        except FileNotFoundError:
            # The row was found but its bytes are gone (deleted meanwhile): nothing to send.
            gone = Response("The bytes of this media are gone.", status_code=404)
            await gone(scope, receive, send)

    async def _send_small(self, spans: list[ByteRange], send: Send) -> None:
        # One read, then a few sends: no need to watch for a disconnect, a send to a
        # departed client just returns.
        data = iter(await _read_spans_off_loop(self.path, spans) if spans else [])
        await send(self._start_message())
        messages = [part if isinstance(part, bytes) else next(data) for part in self.body_plan]
        for index, chunk in enumerate(messages):
            more = index < len(messages) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        if not messages:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_large(self, receive: Receive, send: Send) -> None:
        handle = await aiofiles.open(self.path, "rb", buffering=0)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
                await send(self._start_message())
                last = len(self.body_plan) - 1
                for index, part in enumerate(self.body_plan):
                    more_after = index < last
                    if isinstance(part, bytes):
                        message = {
                            "type": "http.response.body",
                            "body": part,
                            "more_body": more_after,
                        }
                        await send(message)
                    else:
                        await self._send_span(handle.fileno(), part, send, more_after=more_after)
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

    async def _send_span(self, fd: int, span: ByteRange, send: Send, *, more_after: bool) -> None:
        position = span.start
        while position <= span.end:
            wanted = min(self.budget.chunk_bytes(), span.end + 1 - position)
            chunk = await _pread(fd, wanted, position)
            if not chunk:
                raise RuntimeError("a stored file is shorter than its catalog size")
            position += len(chunk)
            more = position <= span.end or more_after
            await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
