"""Keeping the catalog writable on a full disk, so that deleting can free space.

SQLite must write to delete a row; with its disk full it answers "database or disk is full" and
the one way to free space is gone. A SQLite catalog therefore keeps a small ballast file beside
it. A write that fails for lack of space gives the ballast up and runs once more; the ballast
comes back once there is room again. Other databases live on disks of their own; there, a full
disk is reported as such (507).
"""

import errno
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import InsufficientStorage

logger = logging.getLogger("streamport")

BALLAST_BYTES = 16 * 2**20
# SQLITE_FULL; PostgreSQL's disk_full SQLSTATE.
_SQLITE_FULL = 13
_POSTGRES_DISK_FULL = "53100"

T = TypeVar("T")


def is_disk_full(exc: BaseException) -> bool:
    """Whether a database error means its disk is full."""
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    if isinstance(original, sqlite3.Error):
        return getattr(original, "sqlite_errorcode", None) == _SQLITE_FULL or (
            "database or disk is full" in str(original)
        )
    return getattr(original, "sqlstate", None) == _POSTGRES_DISK_FULL or (
        getattr(original, "pgcode", None) == _POSTGRES_DISK_FULL
    )


class Ballast:
    """Bytes held on the catalog's disk for the moment it fills up (SQLite only)."""

    def __init__(self, path: Path | None, size: int = BALLAST_BYTES) -> None:
        self.path = path
        self.size = size

    @classmethod
    def for_catalog(cls, database_url: str) -> "Ballast":
        """The ballast beside a SQLite catalog's file; none for other databases."""
        url = make_url(database_url)
        if url.get_backend_name() != "sqlite" or not url.database:
            return cls(None)
        # Named like the catalog's own files, which every tool already leaves alone.
        return cls(Path(f"{url.database}-reserve"))

    async def restore(self) -> None:
        """Put the ballast (back) in place, if there is room for it; never fails."""
        if self.path is not None:
            await anyio.to_thread.run_sync(self._restore)

    def _restore(self) -> None:
        assert self.path is not None
        if self.path.exists() and self.path.stat().st_size == self.size:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                # Blocks really allocated (a sparse file would free nothing when removed).
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                logger.warning("Could not keep space for the catalog at %s: %s", self.path, exc)

    async def release(self) -> bool:
        """Give the ballast up; whether there was one to give."""
        if self.path is None:
            return False
        try:
            await anyio.Path(self.path).unlink()
        except FileNotFoundError:
            return False
        logger.warning("The catalog's disk is full: released %d reserved bytes", self.size)
        return True


async def write_with_room(
    sessionmaker: async_sessionmaker[AsyncSession],
    ballast: Ballast,
    change: Callable[[AsyncSession], Awaitable[T]],
) -> T:
    """Run ``change`` in a session and commit; if the disk is full, give up the ballast and
    run it once more. A full disk that stays full is ``InsufficientStorage`` (507)."""
    for attempt in range(2):
        async with sessionmaker() as session:
            try:
                result = await change(session)
                await session.commit()
                return result
            except DBAPIError as exc:
                if not is_disk_full(exc):
                    raise
                await session.rollback()
                if attempt or not await ballast.release():
                    raise InsufficientStorage("The catalog's disk is full.") from exc
    raise AssertionError("unreachable")
