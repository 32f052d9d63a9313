"""Sign-in throttling per account and per client address, kept in the catalog so that every
worker and node counts the same failures."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import LoginFailure
from app.errors import TooManyAttempts

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
# A household or office shares one address: it may fail more often than one account.
MAX_FAILURES_PER_ADDRESS = 20


def account_key(username_key: str) -> str:
    return f"user:{username_key}"[:128]


def address_key(address: str) -> str:
    return f"addr:{address}"[:128]


async def admit(session: AsyncSession, account: str, address: str) -> list[int]:
    """Count this attempt as a failure, then let it through only if neither key is over its
    limit with it; else take it back and raise ``TooManyAttempts`` (429, ``Retry-After``).

    The attempt is committed before the keys are counted: of any number of attempts at once,
    each sees every one committed before its count, so at most the limit get through (a
    count first and an insert after let every attempt in flight pass). Call it before the slow
    password check; a success takes the rows back with ``forgive``.
    """
    now = datetime.now(UTC)
    rows = [LoginFailure(key=account, at=now), LoginFailure(key=address, at=now)]
    session.add_all(rows)
    await session.execute(delete(LoginFailure).where(LoginFailure.at < now - WINDOW))
    await session.commit()
    attempt = [row.id for row in rows]
    for key, limit in ((account, MAX_FAILURES_PER_ACCOUNT), (address, MAX_FAILURES_PER_ADDRESS)):
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(LoginFailure.at)).where(
                    LoginFailure.key == key, LoginFailure.at > now - WINDOW
                )
            )
        ).one()
        if count > limit:
            await take_back(session, attempt)
            # Counted failures leave the window one by one: the oldest frees the first try.
            oldest_at = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            raise TooManyAttempts(int((oldest_at + WINDOW - now).total_seconds()) + 1)
    await session.commit()
    return attempt


async def take_back(session: AsyncSession, attempt: list[int]) -> None:
    """An attempt that was refused before its password was checked does not count."""
    await session.execute(delete(LoginFailure).where(LoginFailure.id.in_(attempt)))
    await session.commit()


async def forgive(session: AsyncSession, account: str, attempt: list[int]) -> None:
    """A successful sign-in: its own attempt and the account's failures no longer count
    (the address's earlier failures still do)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.id.in_(attempt)))
    await session.execute(delete(LoginFailure).where(LoginFailure.key == account))
