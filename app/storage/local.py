"""Stored bytes as files under the media directory: ``objects/<2 chars>/<key>``."""

import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio

from app.storage.base import CatalogKeys, ObjectInfo, Span, StoredObject
from app.storage.cached_read import MAX_LOOP_READ_BYTES, cached_reads_available, read_if_cached
from app.storage.free_space import FreeSpace
from app.storage.keys import check_key, is_key, new_key
from app.storage.reading import Descriptor
from app.storage.scratch import PartialFile, ScratchDir, fsync_dir, raise_storage_error

logger = logging.getLogger("streamport")

# Bytes renamed into place are recorded within a second; an hour leaves room for any
# process, however slow, that is about to record them.
ORPHAN_MIN_AGE_SECONDS = 3600


class LocalUpload:
    """An upload written into a locked partial file, renamed into place on commit."""

    def __init__(self, storage: "LocalStorage", partial: PartialFile) -> None:
        self.key = new_key()
        self.partial = partial
        self._storage = storage

    async def write(self, data: bytes | memoryview) -> None:
        self._storage.free_space.consume(len(data))
        await self.partial.write(data)

    async def commit(self) -> None:
        await self._storage.move_into_place(self.partial, self.key)

    async def discard(self) -> None:
        await self.partial.discard()


class _FileSpan:
    def __init__(self, file: Descriptor, span: Span) -> None:
        self._file = file
        self._position = span.start
        self._end = span.end + 1

    async def read(self, max_bytes: int) -> bytes:
        wanted = min(max_bytes, self._end - self._position)
        if wanted <= 0:
            return b""
        # Positional: no seek, no shared file position.
        chunk = await self._file.pread(wanted, self._position)
        if not chunk:
            raise RuntimeError("a stored file is shorter than its catalog size")
        self._position += len(chunk)
        return chunk

    async def aclose(self) -> None:
        pass  # the file belongs to the reader


class _FileReader:
    def __init__(self, file: Descriptor) -> None:
        self._file = file

    async def stream(self, span: Span) -> _FileSpan:
        return _FileSpan(self._file, span)


class _FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def read_spans(self, spans: Sequence[Span]) -> list[bytes]:
        if cached_reads_available() and sum(s.length for s in spans) <= MAX_LOOP_READ_BYTES:
            return await self._read_spans_cached_first(spans)
        # Open, read, close in one executor hop: most range requests are small.
        return await anyio.to_thread.run_sync(_read_spans, self.path, spans)

    async def _read_spans_cached_first(self, spans: Sequence[Span]) -> list[bytes]:
        # Opened on the loop, as nginx opens: a lookup of a stored file's name is a metadata
        # read that the dentry cache answers for any file served more than once.
        file = Descriptor(os.open(self.path, os.O_RDONLY))
        try:
            read: list[bytes] = []
            for span in spans:
                data = read_if_cached(file.fd, span.length, span.start)
                if data is None:
                    break
                read.append(data)
            for span in spans[len(read) :]:
                read.append(await _pread_exactly_in_thread(file, span))
            return read
        finally:
            file.close()

    @asynccontextmanager
    async def open(self) -> AsyncIterator[_FileReader]:
        file = await Descriptor.open(self.path)
        try:
            yield _FileReader(file)
        finally:
            file.close()


def _sized_keys(folder: Path) -> list[StoredObject]:
    found = []
    for path in folder.glob("*"):
        key = f"{folder.name}/{path.name}"
        if is_key(key):
            try:
                stat = path.stat()
                modified_at = datetime.fromtimestamp(stat.st_mtime, UTC)
                found.append(StoredObject(key, stat.st_size, modified_at))
            except FileNotFoundError:
                continue  # deleted meanwhile
    return found


def _read_spans(path: Path, spans: Sequence[Span]) -> list[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return [_pread_exactly(fd, span) for span in spans]
    finally:
        os.close(fd)


def _pread_exactly(fd: int, span: Span) -> bytes:
    return _whole(os.pread(fd, span.length, span.start), span)


async def _pread_exactly_in_thread(file: Descriptor, span: Span) -> bytes:
    return _whole(await file.pread(span.length, span.start), span)


def _whole(data: bytes, span: Span) -> bytes:
    if len(data) != span.length:
        raise RuntimeError("a stored file is shorter than its catalog size")
    return data


class LocalStorage:
    """Stored bytes as files under ``media_dir``; keys are generated, never user input."""

    def __init__(self, media_dir: Path, min_free_bytes: int = 0) -> None:
        self.media_dir = media_dir
        self.objects_dir = media_dir / "objects"
        self.scratch = ScratchDir(media_dir / ".partial")
        self.free_space = FreeSpace(media_dir, min_free_bytes)

    def check_room(self, incoming_bytes: int) -> None:
        self.free_space.check(incoming_bytes)

    async def prepare(self) -> None:
        await anyio.to_thread.run_sync(self._make_dirs)

    def _make_dirs(self) -> None:
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.scratch.prepare()

    async def close(self) -> None:
        pass

    def path_for(self, key: str) -> Path:
        """The file holding ``key``'s bytes; refuses anything that is not a generated key."""
        return self.objects_dir / check_key(key)

    async def open_upload(self, size_hint: int | None = None) -> LocalUpload:
        return LocalUpload(self, await self.scratch.open_partial())

    async def store_scratch(self, partial: PartialFile) -> str:
        key = new_key()
        try:
            await self.move_into_place(partial, key)
        except BaseException:
            await partial.discard()
            raise
        return key

    async def move_into_place(self, partial: PartialFile, key: str) -> None:
        """Durably rename a complete partial file to ``key``'s place."""
        await partial.sync()
        target = self.path_for(key)
        try:
            await aiofiles.os.makedirs(target.parent, exist_ok=True)
            await aiofiles.os.replace(partial.path, target)
        except OSError as exc:
            await partial.close()
            raise_storage_error(exc)
        try:
            # The mtime says when the bytes were stored, not last written: the orphan sweep
            # spares young files, and a file of a long multi-file upload was written long ago.
            await anyio.to_thread.run_sync(os.utime, target)
            await anyio.to_thread.run_sync(fsync_dir, target.parent)
        except OSError as exc:
            # In place but not durable, and its caller will not count it as stored: it goes.
            with anyio.CancelScope(shield=True):
                await aiofiles.os.remove(target)
            raise_storage_error(exc)
        finally:
            await partial.close()

    def source(self, key: str) -> _FileSource:
        return _FileSource(self.path_for(key))

    @asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        # The stored file itself: nobody writes to stored bytes, and a delete only unlinks.
        yield self.path_for(key)

    async def info(self, key: str) -> ObjectInfo:
        stat = await aiofiles.os.stat(self.path_for(key))
        return ObjectInfo(stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    async def delete(self, key: str) -> None:
        try:
            await aiofiles.os.remove(self.path_for(key))
        except FileNotFoundError:
            pass

    async def sweep(self, catalog_keys: CatalogKeys) -> None:
        partials = await anyio.to_thread.run_sync(self.scratch.sweep_partials)
        if partials:
            logger.info("Removed %d partial file(s) left by an interrupted server", len(partials))
        # Keys a request still under way has stored but not catalogued yet are not orphans.
        known = await catalog_keys() | await anyio.to_thread.run_sync(self.scratch.held_keys)
        orphans = await anyio.to_thread.run_sync(self.sweep_orphans, known, ORPHAN_MIN_AGE_SECONDS)
        if orphans:
            logger.info("Removed %d stored file(s) that no catalog row points at", len(orphans))

    async def listing(self) -> AsyncIterator[StoredObject]:
        # One folder per thread hop: a library of a million files is listed in pieces.
        folders = await anyio.to_thread.run_sync(lambda: sorted(self.objects_dir.glob("*")))
        for folder in folders:
            found = await anyio.to_thread.run_sync(_sized_keys, folder)
            for stored in found:
                yield stored

    def stored_keys(self) -> Iterable[str]:
        """Every key that has bytes on disk."""
        for path in self.objects_dir.glob("*/*"):
            key = f"{path.parent.name}/{path.name}"
            if is_key(key):
                yield key

    def sweep_orphans(self, catalog_keys: set[str], min_age_seconds: float) -> list[str]:
        """Remove stored bytes no catalog row points at (a crash between rename and insert).

        Only files older than ``min_age_seconds`` go, so an upload that another process has
        just renamed into place, and is about to record, is left alone.
        """
        removed = []
        cutoff = time.time() - min_age_seconds
        for key in self.stored_keys():
            if key in catalog_keys:
                continue
            path = self.path_for(key)
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(key)
            except FileNotFoundError:
                continue
        return removed
