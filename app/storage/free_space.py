"""Free space on the local disk, against a reserve that uploads and processing never eat into.

With the disk full, nothing works: not the catalog, not the log, not even deleting (SQLite
must write to delete). So every write of ours stops short of ``reserve_bytes``: an upload that
declares its length is refused before a byte is read, one that does not is stopped as soon as
it reaches the reserve, and processing checks before making a copy.
"""

import os
import time
from pathlib import Path

from app.errors import InsufficientStorage

# Between two readings of the filesystem, writes are subtracted from the last one: statvfs
# for every 1 MiB written would cost more than it tells.
_REFRESH_SECONDS = 1.0
_REFRESH_BYTES = 64 * 2**20


class FreeSpace:
    """The free bytes of one filesystem, as this process sees them, and its reserve."""

    def __init__(self, directory: Path, reserve_bytes: int) -> None:
        self.directory = directory
        self.reserve_bytes = reserve_bytes
        self._estimate = 0
        self._read_at = float("-inf")
        self._written_since = 0

    def free_bytes(self) -> int:
        """What the filesystem has free for us now (``statvfs``: blocks for unprivileged
        users, so root's own reserve is not counted)."""
        stats = os.statvfs(self.directory)
        self._estimate = stats.f_bavail * stats.f_frsize
        self._read_at = time.monotonic()
        self._written_since = 0
        return self._estimate

    def room(self) -> int:
        """How many bytes may still be written before the reserve."""
        return self.free_bytes() - self.reserve_bytes

    def check(self, incoming_bytes: int) -> None:
        """Refuse ``incoming_bytes`` more if they would eat into the reserve."""
        if self.free_bytes() - incoming_bytes < self.reserve_bytes:
            raise self._refusal()

    def consume(self, written_bytes: int) -> None:
        """Account for bytes about to be written; refuse once the reserve is reached."""
        if (
            self._written_since >= _REFRESH_BYTES
            or time.monotonic() - self._read_at >= _REFRESH_SECONDS
        ):
            self.free_bytes()
        self._estimate -= written_bytes
        self._written_since += written_bytes
        if self._estimate < self.reserve_bytes:
            raise self._refusal()

    def _refusal(self) -> InsufficientStorage:
        return InsufficientStorage(
            "The server has no room left to store this upload: it keeps "
            f"{self.reserve_bytes:,} bytes of its disk free."
        )
