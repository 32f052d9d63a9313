"""Opening a file for asynchronous reads in a way a cancellation cannot leak.

``aiofiles.open`` is awaited: a task cancelled while the worker thread opens the file never
receives the file object, which stays open until the garbage collector finds it. Here the
open runs in a thread hop that finishes before any cancellation is delivered, and the close
is shielded.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiofiles.threadpool
import anyio
from aiofiles.threadpool.binary import AsyncBufferedReader


@asynccontextmanager
async def open_for_reading(path: Path) -> AsyncIterator[AsyncBufferedReader]:
    """``path`` opened ``rb`` for awaited reads; closed on leaving, cancelled or not."""
    raw = await anyio.to_thread.run_sync(open, path, "rb")
    handle: AsyncBufferedReader = aiofiles.threadpool.wrap(raw)
    try:
        yield handle
    finally:
        with anyio.CancelScope(shield=True):
            await handle.close()
