"""Reading bytes the page cache already holds, without ever waiting for the disk.

``preadv2(RWF_NOWAIT)`` (Linux 4.14+) copies what is cached and refuses (``EAGAIN``) rather
than start disk I/O. A cached 64 KiB read costs about 10 µs on the event loop; handing it to a
worker thread costs about ten times that. Anything not cached, wholly, goes to a thread as
before, so a cold disk never stalls the loop. Where the kernel or the file system cannot do
this, the first refusal turns the shortcut off for the process.
"""

import errno
import os

# Larger reads go to a thread whatever the cache holds: copying them would hold the loop
# longer than the hand-over costs, and a thread copies while the loop serves others.
MAX_LOOP_READ_BYTES = 256 * 1024

_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


class _Switch:
    available = _RWF_NOWAIT is not None and hasattr(os, "preadv")


def cached_reads_available() -> bool:
    """Whether this process can read from the page cache without blocking."""
    return _Switch.available


def read_if_cached(fd: int, length: int, offset: int) -> bytes | None:
    """``length`` bytes at ``offset`` when the page cache holds all of them, else ``None``.

    ``None`` also for a short read (part cached, or the file ends early): the caller reads
    again the ordinary way, which tells a cold page from a short file.
    """
    if not _Switch.available or _RWF_NOWAIT is None:
        return None
    buffer = bytearray(length)
    try:
        count = os.preadv(fd, [buffer], offset, _RWF_NOWAIT)
    except BlockingIOError:
        return None
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            _Switch.available = False
            return None
        raise
    return bytes(buffer) if count == length else None
