"""Local scratch files under ``<media_dir>/.partial``: uploads in flight on local storage,
ffmpeg's inputs and outputs, the markers of S3 multipart uploads in flight, and the ledgers of
requests whose files are stored but not yet catalogued.

Each scratch file is locked (``flock``) by the process using it, so a start-up sweep can tell
a file in use by another worker from one left behind by a crash.
"""

import contextlib
import errno
import fcntl
import io
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio
from aiofiles.threadpool.binary import AsyncFileIO

from app.errors import InsufficientStorage, ServerBusy

PARTIAL_SUFFIX = ".part"
LEDGER_SUFFIX = ".ledger"
_CREATING_SUFFIX = ".creating"


def raise_storage_error(exc: OSError) -> None:
    """Re-raise ``exc``; a full disk or quota becomes ``InsufficientStorage`` (507), running
    out of descriptors ``ServerBusy`` (503)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise InsufficientStorage() from exc
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        raise ServerBusy() from exc
    raise exc


class PartialFile:
    """A locked scratch file being written."""

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
            raise_storage_error(exc)

    async def read_all(self) -> bytes:
        """Everything written so far (the caller knows it is small enough to hold)."""
        fd = self._handle.fileno()
        size = os.fstat(fd).st_size
        return await anyio.to_thread.run_sync(os.pread, fd, size, 0)

    async def rewind(self) -> None:
        """Empty the file and write from its start again."""
        try:
            await anyio.to_thread.run_sync(os.ftruncate, self._handle.fileno(), 0)
            await self._handle.seek(0)
        except OSError as exc:
            raise_storage_error(exc)

    async def sync(self) -> None:
        """Flush and fsync, so the bytes survive a power loss once renamed into place."""
        try:
            await self._handle.flush()
            await anyio.to_thread.run_sync(os.fsync, self._handle.fileno())
        except OSError as exc:
            raise_storage_error(exc)

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
                # the file itself; the caller has already failed.
                pass

    async def discard(self) -> None:
        """Close and remove the file."""
        await self.close()
        with anyio.CancelScope(shield=True):
            try:
                await aiofiles.os.remove(self.path)
            except FileNotFoundError:
                pass


class Ledger:
    """The keys a request has stored so far and will catalogue when it ends: while its
    process holds the ledger, no orphan sweep of this machine takes them."""

    def __init__(self, partial: PartialFile) -> None:
        self._partial = partial

    async def add(self, key: str) -> None:
        """Record one more stored key."""
        await self._partial.write(f"{key}\n".encode())

    async def close(self) -> None:
        """The keys are catalogued, or deleted: forget them."""
        await self._partial.discard()


class ScratchDir:
    """The directory of locked scratch files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self) -> None:
        """Create the directory."""
        self.directory.mkdir(parents=True, exist_ok=True)

    async def open_partial(
        self, suffix: str = PARTIAL_SUFFIX, token: str | None = None
    ) -> PartialFile:
        """Start a new scratch file named ``<token><suffix>`` (a random token by default),
        locked by this process for as long as it is open.

        It is created under a name the sweep leaves alone and renamed once locked: another
        worker starting up must never find an unlocked file that is in use.
        """
        token = token or secrets.token_hex(16)
        creating = self.directory / f"{token}{_CREATING_SUFFIX}"
        path = self.directory / f"{token}{suffix}"
        # In one synchronous step (a local open, lock and rename take microseconds): an await
        # in between could be cancelled after the thread opened the file, leaking it.
        try:
            raw = _create_locked(creating, path)
        except OSError as exc:
            raise_storage_error(exc)
        handle = AsyncFileIO(raw, loop=None, executor=None)
        return PartialFile(path, handle)

    async def open_ledger(self) -> Ledger:
        """Start the ledger of one request's stored keys."""
        return Ledger(await self.open_partial(LEDGER_SUFFIX))

    def held_keys(self) -> set[str]:
        """Every key in a ledger a live process holds: stored, about to be catalogued. (The
        keys of a dead process's ledger are orphans like any other; the ledger itself goes
        with the other abandoned scratch files.)"""
        keys: set[str] = set()
        for _, fd, abandoned in self._each_file(LEDGER_SUFFIX):
            if not abandoned:
                keys.update(_read_all(fd).decode(errors="replace").split())
        return keys

    def sweep_partials(self) -> list[Path]:
        """Remove scratch files whose process is gone (a crash or kill); returns what went."""
        removed = []
        # A file still being created is renamed within microseconds; one that has kept its
        # creating name for a minute belongs to a process that died right then.
        cutoff = time.time() - 60
        for path in self.directory.glob(f"*{_CREATING_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
        for suffix in (PARTIAL_SUFFIX, LEDGER_SUFFIX):
            for path in self.abandoned(suffix):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def abandoned(self, suffix: str) -> Iterator[Path]:
        """Each ``*suffix`` file no live process holds, locked while the caller handles it;
        the caller removes it."""
        for path, _, abandoned in self._each_file(suffix):
            if abandoned:
                yield path

    def _each_file(self, suffix: str) -> Iterator[tuple[Path, int, bool]]:
        """Each ``*suffix`` file, open, and whether it is abandoned: if so, it is locked by
        this process while the caller handles it; else a live process holds its lock."""
        for path in self.directory.glob(f"*{suffix}"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    abandoned = True
                except BlockingIOError:
                    abandoned = False
                yield path, fd, abandoned
            finally:
                os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _create_locked(creating: Path, path: Path) -> io.FileIO:
    raw = io.FileIO(creating, "xb+")
    try:
        fcntl.flock(raw.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(creating, path)
    except BaseException:
        raw.close()
        creating.unlink(missing_ok=True)
        raise
    return raw


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
