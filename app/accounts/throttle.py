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


async def check(session: AsyncSession, account: str, address: str) -> None:
    """``TooManyAttempts`` (429 with ``Retry-After``) while either key is over its limit."""
    now = datetime.now(UTC)
    for key, limit in ((account, MAX_FAILURES_PER_ACCOUNT), (address, MAX_FAILURES_PER_ADDRESS)):
        row = (
            await session.execute(
                select(func.count(), func.min(LoginFailure.at)).where(
                    LoginFailure.key == key, LoginFailure.at > now - WINDOW
                )
            )
        ).one()
        count, oldest = row
        if count >= limit:
            # Counted failures leave the window one by one: the oldest frees the first try.
            oldest_at = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            raise TooManyAttempts(int((oldest_at + WINDOW - now).total_seconds()) + 1)


async def record_attempt(session: AsyncSession, account: str, address: str) -> list[int]:
    """Count an attempt as failed before its password is checked (flushed), so that
    concurrent guesses cannot all pass ``check`` while the slow hash runs; a success takes
    its rows back with ``forgive``."""
    now = datetime.now(UTC)
    rows = [LoginFailure(key=account, at=now), LoginFailure(key=address, at=now)]
    session.add_all(rows)
    await session.execute(delete(LoginFailure).where(LoginFailure.at < now - WINDOW))
    await session.flush()
    return [row.id for row in rows]


async def forgive(session: AsyncSession, account: str, attempt: list[int]) -> None:
    """A successful sign-in: its own attempt and the account's failures no longer count
    (the address's earlier failures still do)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.id.in_(attempt)))
    await session.execute(delete(LoginFailure).where(LoginFailure.key == account))
