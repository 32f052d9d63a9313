"""Opening and reading files in worker threads so that no cancellation can leak or misuse a
descriptor.

An awaited thread call can be cancelled while its thread goes on: a task cancelled during an
open would never receive the file, and one cancelled during a read would close the descriptor
under the running read (whose number the next open may already have reused). Here a
cancellation waits for nothing but owns nothing either: a file opened after its opener left is
closed when the open returns, and a descriptor is closed only once no read is running on it.
uvicorn cancels the requests still running at the end of a graceful shutdown; a client that
disconnects cancels the body that was being sent.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiofiles.threadpool
from aiofiles.threadpool.binary import AsyncBufferedReader

T = TypeVar("T")


async def _open_in_thread(opener: Callable[[], T], close: Callable[[T], Any]) -> T:
    future = asyncio.get_running_loop().run_in_executor(None, opener)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:

        def close_unclaimed(done: "asyncio.Future[T]") -> None:
            if not done.cancelled() and done.exception() is None:
                close(done.result())

        future.add_done_callback(close_unclaimed)
        raise


class Descriptor:
    """A read-only file descriptor for positional reads in worker threads."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._reads_running = 0
        self._closing = False

    @classmethod
    async def open(cls, path: Path) -> "Descriptor":
        """``path`` opened read-only, in a worker thread."""
        fd = await _open_in_thread(lambda: os.open(path, os.O_RDONLY), os.close)
        return cls(fd)

    async def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset``, read in a worker thread."""
        future = asyncio.get_running_loop().run_in_executor(None, os.pread, self.fd, length, offset)
        self._reads_running += 1
        future.add_done_callback(self._read_finished)
        return await asyncio.shield(future)

    def close(self) -> None:
        """Close now, or when the last read still running returns."""
        if not self._closing:
            self._closing = True
            if not self._reads_running:
                os.close(self.fd)

    def _read_finished(self, done: "asyncio.Future[bytes]") -> None:
        if not done.cancelled():
            done.exception()  # retrieved: whoever awaited it may have left
        self._reads_running -= 1
        if self._closing and not self._reads_running:
            os.close(self.fd)


@asynccontextmanager
async def open_for_reading(path: Path) -> AsyncIterator[AsyncBufferedReader]:
    """``path`` opened ``rb`` for awaited reads; closed on leaving, cancelled or not."""
    raw = await _open_in_thread(lambda: open(path, "rb"), lambda file: file.close())
    handle: AsyncBufferedReader = aiofiles.threadpool.wrap(raw)
    try:
        yield handle
    finally:
        # Closed here, not in a thread: an awaited close could be cancelled halfway, and
        # closing a file only read from writes nothing.
        raw.close()
