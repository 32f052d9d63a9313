"""How many connections a server process keeps, and how long it waits for each client.

Pure policy plus the one place that reads and raises the open-files limit; the protocol in
``app.web.protocol`` enforces it.
"""

import logging
import resource
from dataclasses import dataclass

from app.config import Settings

logger = logging.getLogger("streamport")

# Where the protocol finds the limits: the lifespan state, which uvicorn hands to every
# connection of the worker process.
LIMITS_STATE_KEY = "streamport.connection_limits"

# Descriptors kept for what is not a client connection: the catalog, log files, ffmpeg's pipes.
RESERVED_DESCRIPTORS = 64
# A connection may hold more descriptors: the file it downloads, or an upload's ledger and
# the file (or S3 part spool) it writes.
DESCRIPTORS_PER_CONNECTION = 3
# The most a process asks for when it raises its own open-files limit.
_WANTED_OPEN_FILES = 65536


@dataclass(frozen=True)
class ConnectionLimits:
    """What each worker process allows its clients."""

    max_connections: int
    max_connections_per_address: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    send_timeout_seconds: float
    max_header_bytes: int
    # After an answer sent before the request body was read (a 413, a 507), the rest of the
    # body is read and dropped for this long, so the client sees the answer instead of a reset.
    linger_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings, open_files_limit: int) -> "ConnectionLimits":
        """The limits ``settings`` ask for, with the connection count fitted to the
        descriptors the process may open."""
        max_connections = fit_connections(settings.max_connections, open_files_limit)
        return cls(
            max_connections=max_connections,
            max_connections_per_address=min(settings.max_connections_per_address, max_connections),
            header_timeout_seconds=settings.header_timeout_seconds,
            body_timeout_seconds=settings.body_timeout_seconds,
            send_timeout_seconds=settings.send_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
        )


def fit_connections(wanted: int, open_files_limit: int) -> int:
    """At most ``wanted`` connections, and never so many that they and what each may open
    exhaust ``open_files_limit`` descriptors (then nothing, not even ``/healthz``, answers)."""
    room = (open_files_limit - RESERVED_DESCRIPTORS) // DESCRIPTORS_PER_CONNECTION
    return max(1, min(wanted, room))


def open_files_limit() -> int:
    """The process's soft limit on open descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else _WANTED_OPEN_FILES


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit towards the hard one (as nginx's
    ``worker_rlimit_nofile`` does; the usual soft default of 1024 is small for a server);
    returns the limit now in force. Worker processes inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, _WANTED_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.warning("Could not raise the open-files limit from %d: %s", soft, exc)
    return open_files_limit()
