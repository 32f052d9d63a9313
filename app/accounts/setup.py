"""The first start: while no account exists, ``serve`` prints a one-time setup URL whose
token is the only way to create the first admin from the web."""

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.credentials import digest
from app.accounts.users import count_users
from app.catalog.models import SetupToken


async def issue_setup_token(session: AsyncSession) -> str | None:
    """A new setup token (replacing any older one) while no account exists, else None."""
    if await count_users(session):
        return None
    token = secrets.token_urlsafe(24)
    await session.execute(delete(SetupToken))
    session.add(SetupToken(token_hash=digest(token), created_at=datetime.now(UTC)))
    return token


async def setup_token_valid(session: AsyncSession, token: str) -> bool:
    if not token or len(token) > 128:
        return False
    found = await session.scalar(select(SetupToken).where(SetupToken.token_hash == digest(token)))
    return found is not None


async def consume_setup_token(session: AsyncSession, token: str) -> bool:
    """Use the token up; of two requests racing with it, one wins."""
    if not token or len(token) > 128:
        return False
    result = await session.execute(delete(SetupToken).where(SetupToken.token_hash == digest(token)))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await session.execute(delete(SetupToken))
    return await count_users(session) == 0
