"""Recognising a catalog that is busy rather than broken: worth a 503 and a retry, not a 500."""

import sqlite3

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
# lock_not_available, serialization_failure, deadlock_detected
_POSTGRES_RETRYABLE = {"55P03", "40001", "40P01"}


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` means the catalog was too busy to answer in time: every pooled
    connection in use, SQLite's write lock held past the busy timeout, or a PostgreSQL lock
    or serialization conflict."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", 0) & 0xFF
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in str(original)
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return state in _POSTGRES_RETRYABLE
