"""Where the bytes live: local files under the media directory.

Layout: ``objects/<2 chars>/<key>`` for stored bytes, ``.partial/`` for uploads in flight. A
partial file is locked (``flock``) by the process writing it, so a start-up sweep can tell an
upload in progress in another worker from one left behind by a crash.
"""

import contextlib
import errno
import fcntl
import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio
from aiofiles.threadpool.binary import AsyncFileIO

from app.errors import InsufficientStorage

_KEY = re.compile(r"[a-z0-9]{2}/[a-z0-9]{8,64}")
_CREATING_SUFFIX = ".creating"


def _raise_storage_error(exc: OSError) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise InsufficientStorage() from exc
    raise exc


class PartialFile:
    """A file being written in ``.partial/``; becomes stored bytes only through ``commit``."""

    def __init__(self, path: Path, handle: AsyncFileIO) -> None:
        self.path = path
        self._handle = handle
        self._closed = False

    async def write(self, data: bytes | memoryview) -> None:
        """Append all of ``data``; a full disk becomes ``InsufficientStorage``."""
        view = memoryview(data)
        try:
            while view:
                # Unbuffered writes may be short (a signal, a nearly full disk).
                written = await self._handle.write(view)
                view = view[written:]
        except OSError as exc:
            _raise_storage_error(exc)

    async def sync(self) -> None:
        """Flush and fsync, so the bytes survive a power loss once renamed into place."""
        try:
            await self._handle.flush()
            await anyio.to_thread.run_sync(os.fsync, self._handle.fileno())
        except OSError as exc:
            _raise_storage_error(exc)

    async def close(self) -> None:
        """Close the handle (releasing the lock); safe to call twice, even when cancelled."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self._handle.close()
            except OSError:
                # Buffered bytes that cannot be flushed (full disk) are discarded along with
                # the partial file itself; the caller has already failed the upload.
                pass

    async def discard(self) -> None:
        """Close and remove the partial file."""
        await self.close()
        with anyio.CancelScope(shield=True):
            try:
                await aiofiles.os.remove(self.path)
            except FileNotFoundError:
                pass


class LocalStorage:
    """Stored bytes as files under ``media_dir``; keys are generated, never user input."""

    def __init__(self, media_dir: Path) -> None:
        self.media_dir = media_dir
        self.objects_dir = media_dir / "objects"
        self.partial_dir = media_dir / ".partial"

    def prepare(self) -> None:
        """Create the directories storage needs."""
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def new_key() -> str:
        """A fresh, unguessable storage key."""
        token = secrets.token_hex(16)
        return f"{token[:2]}/{token}"

    def path_for(self, key: str) -> Path:
        """The file holding ``key``'s bytes; refuses anything that is not a generated key."""
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.objects_dir / key

    async def open_partial(self) -> PartialFile:
        """Start a new partial file, locked by this process for as long as it is open.

        It is created under a name the sweep leaves alone and renamed once locked: another
        worker starting up must never find an unlocked ``.part`` file that is in use.
        """
        token = secrets.token_hex(16)
        creating = self.partial_dir / f"{token}{_CREATING_SUFFIX}"
        path = self.partial_dir / f"{token}.part"
        try:
            handle = await aiofiles.open(creating, "xb", buffering=0)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            await aiofiles.os.rename(creating, path)
        except OSError as exc:
            _raise_storage_error(exc)
        return PartialFile(path, handle)

    async def commit(self, partial: PartialFile, key: str) -> None:
        """Durably move a complete partial file into place under ``key``."""
        await partial.sync()
        target = self.path_for(key)
        try:
            await aiofiles.os.makedirs(target.parent, exist_ok=True)
            await aiofiles.os.replace(partial.path, target)
            await anyio.to_thread.run_sync(_fsync_dir, target.parent)
        except OSError as exc:
            _raise_storage_error(exc)
        finally:
            await partial.close()

    async def delete(self, key: str) -> None:
        """Remove ``key``'s bytes; already gone is fine."""
        try:
            await aiofiles.os.remove(self.path_for(key))
        except FileNotFoundError:
            pass

    def sweep_partials(self) -> list[Path]:
        """Remove partial files whose writer is gone (a crash or kill); returns what went."""
        removed = []
        # A file still being created is renamed to .part within microseconds; one that has
        # kept its creating name for a minute belongs to a process that died right then.
        cutoff = time.time() - 60
        for path in self.partial_dir.glob(f"*{_CREATING_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
        for path in self.partial_dir.glob("*.part"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live upload in another process holds it
            else:
                path.unlink(missing_ok=True)
                removed.append(path)
            finally:
                os.close(fd)
        return removed

    def stored_keys(self) -> Iterable[str]:
        """Every key that has bytes on disk."""
        for path in self.objects_dir.glob("*/*"):
            key = f"{path.parent.name}/{path.name}"
            if _KEY.fullmatch(key):
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
