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


async def record_failure(session: AsyncSession, account: str, address: str) -> None:
    now = datetime.now(UTC)
    session.add_all([LoginFailure(key=account, at=now), LoginFailure(key=address, at=now)])
    await session.execute(delete(LoginFailure).where(LoginFailure.at < now - WINDOW))


async def clear(session: AsyncSession, account: str) -> None:
    """A successful sign-in forgets the account's failures (not the address's)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.key == account))
