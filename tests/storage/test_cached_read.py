"""Reads from the page cache on the event loop; everything else from a worker thread."""

import os
import subprocess
from pathlib import Path

import anyio
import pytest

from app.storage import LocalStorage
from app.storage.base import Span
from app.storage.cached_read import cached_reads_available, read_if_cached

SIZE = 1024 * 1024


@pytest.fixture
def stored(tmp_path: Path) -> tuple[LocalStorage, str, bytes]:
    storage = LocalStorage(tmp_path / "media")
    anyio.run(storage.prepare)
    data = os.urandom(SIZE)

    async def store() -> str:
        upload = await storage.open_upload()
        await upload.write(data)
        await upload.commit()
        return upload.key

    return storage, anyio.run(store), data


def _evict(path: Path) -> None:
    """Drop the file's pages from the page cache (clean pages go at once)."""
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    if fs.stdout.strip() == "tmpfs":
        pytest.skip("tmpfs pages live in the page cache only: nothing to evict")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_this_kernel_reads_cached_pages_without_waiting() -> None:
    # CI runs on Linux: if this fails, every small range pays a thread hop again.
    assert cached_reads_available()


def test_cached_bytes_come_back_whole_and_cold_ones_not_at_all(
    stored: tuple[LocalStorage, str, bytes],
) -> None:
    storage, key, data = stored
    path = storage.path_for(key)
    path.read_bytes()  # cached now
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_if_cached(fd, 65536, 4096) == data[4096 : 4096 + 65536]
        # Past the end: short, so left to an ordinary read that tells EOF apart.
        assert read_if_cached(fd, 65536, SIZE - 100) is None
        _evict(path)
        assert read_if_cached(fd, 65536, SIZE // 2) is None
    finally:
        os.close(fd)


def test_small_reads_are_exact_hot_or_cold(stored: tuple[LocalStorage, str, bytes]) -> None:
    storage, key, data = stored
    spans = [Span(0, 99), Span(500_000, 565_535), Span(SIZE - 10, SIZE - 1)]
    expected = [data[s.start : s.end + 1] for s in spans]
    source = storage.source(key)
    _evict(storage.path_for(key))
    assert anyio.run(source.read_spans, spans) == expected  # from disk, in a thread
    assert anyio.run(source.read_spans, spans) == expected  # from the cache, on the loop
    storage.path_for(key).write_bytes(data[:1000])  # damaged behind the catalog's back
    with pytest.raises(RuntimeError, match="shorter"):
        anyio.run(source.read_spans, spans)
