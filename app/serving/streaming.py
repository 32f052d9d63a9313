"""The response that sends stored bytes: a body plan of file spans and framing bytes, read in
fixed chunks, stopped as soon as the client leaves."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import anyio
import anyio.lowlevel
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.serving.byte_ranges import BodyPart, ByteRange
from app.storage import ByteSource, SpanReader, SpanStream

MIN_CHUNK_BYTES = 64 * 1024


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
        source: ByteSource,
        *,
        status_code: int,
        headers: dict[str, str],
        body: Sequence[BodyPart],
        budget: SendBudget,
    ) -> None:
        self.source = source
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
                    await self._send_large(spans, receive, send)
        except FileNotFoundError:
            # The row was found but its bytes are gone (deleted meanwhile): nothing to send.
            gone = Response("The bytes of this media are gone.", status_code=404)
            await gone(scope, receive, send)

    async def _send_small(self, spans: list[ByteRange], send: Send) -> None:
        # One read, then a few sends: no need to watch for a disconnect, a send to a
        # departed client just returns.
        data = iter(await self.source.read_spans(spans) if spans else [])
        await send(self._start_message())
        messages = [part if isinstance(part, bytes) else next(data) for part in self.body_plan]
        for index, chunk in enumerate(messages):
            more = index < len(messages) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        if not messages:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_large(self, spans: list[ByteRange], receive: Receive, send: Send) -> None:
        async with self.source.open() as reader:
            # The first span is opened before the headers go out (and outside the task
            # group, which would wrap the error): bytes that are gone get a clean 404 from an
            # object store too.
            opened: SpanStream | None = await reader.stream(spans[0])
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
                            continue
                        stream, opened = opened, None
                        await self._send_span(reader, stream, part, send, more_after=more_after)
                    tasks.cancel_scope.cancel()
            finally:
                if opened is not None:
                    with anyio.CancelScope(shield=True):
                        await opened.aclose()

    def _start_message(self) -> Message:
        return {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }

    async def _send_span(
        self,
        reader: SpanReader,
        stream: SpanStream | None,
        span: ByteRange,
        send: Send,
        *,
        more_after: bool,
    ) -> None:
        stream = stream or await reader.stream(span)
        try:
            remaining = span.length
            while remaining:
                chunk = await stream.read(min(self.budget.chunk_bytes(), remaining))
                if not chunk:
                    raise RuntimeError("stored bytes are shorter than their catalog size")
                remaining -= len(chunk)
                more = remaining > 0 or more_after
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                # Neither a read of bytes an S3 stream already holds nor a send to a client
                # that is gone has to suspend: yield, so the disconnect watcher gets to run.
                await anyio.lowlevel.checkpoint()
        finally:
            # A disconnect cancels the body: closing must still happen, or an object
            # store would keep sending into a connection nobody reads.
            with anyio.CancelScope(shield=True):
                await stream.aclose()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
