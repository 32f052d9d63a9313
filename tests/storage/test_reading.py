"""Descriptors opened and read in threads survive a cancelled caller: none leaks, none is
closed under a read that is still running.

A task is cancelled the plain asyncio way (``Task.cancel``), as uvicorn cancels the requests
still running when a graceful shutdown runs out of time.
"""

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from app.storage.reading import Descriptor, open_for_reading


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _cancel_while_blocked(coro: object, writer_for: Path | None = None) -> None:
    task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if writer_for is not None:
        # A writer lets the reader's open of the FIFO return, now that nobody awaits it.
        writer = os.open(writer_for, os.O_WRONLY)
        os.close(writer)
    await asyncio.sleep(0.2)


@pytest.mark.parametrize("opener", ["descriptor", "file"])
def test_a_file_opened_after_its_opener_left_is_closed(tmp_path: Path, opener: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes

    async def open_it() -> None:
        if opener == "descriptor":
            await Descriptor.open(fifo)
        else:
            async with open_for_reading(fifo):
                pass

    async def scenario() -> None:
        before = _open_descriptors()
        await _cancel_while_blocked(open_it(), writer_for=fifo)
        assert _open_descriptors() == before

    asyncio.run(scenario())


def test_a_descriptor_is_closed_only_once_its_running_read_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bytes"
    path.write_bytes(os.urandom(4096))
    real_pread = os.pread
    reads: list[bytes | OSError] = []

    def slow_pread(fd: int, length: int, offset: int) -> bytes:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)
        try:
            data = real_pread(fd, length, offset)
        except OSError as error:
            reads.append(error)
            raise
        reads.append(data)
        return data

    monkeypatch.setattr(os, "pread", slow_pread)

    async def scenario() -> None:
        file = await Descriptor.open(path)

        async def read_then_close() -> None:
            try:
                await file.pread(100, 0)
            finally:
                file.close()

        await _cancel_while_blocked(read_then_close())
        # The cancelled read ran on to its end on this very file, which is closed now.
        assert reads == [path.read_bytes()[:100]]
        with pytest.raises(OSError):
            os.fstat(file.fd)

    asyncio.run(scenario())
