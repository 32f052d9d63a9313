"""Password hashing with Argon2id (argon2-cffi), bounded so a flood of sign-ins cannot take
the process's memory or every core."""

import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import InvalidInput, ServerBusy

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
# RFC 9106's second recommendation (64 MiB, 3 passes) with 2 lanes: about 140 ms on a
# 2-core machine, within the 50–250 ms people accept; bench/accounts.py measures it.
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2)
# Each hash holds 64 MiB for its duration: at most two at once per process, and a bounded
# queue behind them (the rest are told to come back).
_LIMITER = anyio.CapacityLimiter(2)
_MAX_WAITING = 32


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so that a miss takes as long as a wrong
    password. Made on first use: hashing at import would cost every process (each CLI call,
    each server start) an Argon2 run."""
    return _HASHER.hash("streamport-timing-equaliser")


def check_password_rules(password: str) -> None:
    """``InvalidInput`` unless the password is acceptable."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"The password must have at most {MAX_PASSWORD_CHARS} characters.")


def hash_password_sync(password: str) -> str:
    """The Argon2id hash of ``password`` (blocking; for the CLI)."""
    return _HASHER.hash(password)


async def hash_password(password: str) -> str:
    """The Argon2id hash of ``password``, computed in a worker thread."""
    return await _run(_HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; a missing hash costs the same time and never matches."""
    return await _run(_verify, password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        _HASHER.verify(password_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return password_hash is not None


class _Admission:
    """The sign-ins under way in this process, counted from before their first query."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.active >= self.limit:
            raise ServerBusy("Too many sign-ins at once; please try again shortly.")
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


# As many as can be hashing or waiting for a turn: the rest are turned away before they
# take a catalog connection or a place in the SQLite write queue.
_SIGN_INS = _Admission(_LIMITER.total_tokens + _MAX_WAITING)


def sign_in_slot() -> AbstractContextManager[None]:
    """Hold one of the process's sign-in places for a whole password check, including its
    catalog work; ``ServerBusy`` (503) when none is free."""
    return _SIGN_INS.slot()


async def _run(function, *args):  # type: ignore[no-untyped-def]
    if _LIMITER.statistics().tasks_waiting >= _MAX_WAITING:
        raise ServerBusy("Too many sign-ins at once; please try again shortly.")
    return await anyio.to_thread.run_sync(function, *args, limiter=_LIMITER)
