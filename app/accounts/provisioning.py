"""Accounts from the command line (``streamport user …``, ``streamport token create``) and
the setup token ``serve`` prints: each opens the catalog for one short transaction."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import api_tokens, audit, setup, users
from app.catalog.db import create_engine, create_sessionmaker
from app.catalog.models import User
from app.config import Settings

T = TypeVar("T")


async def _in_catalog(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = create_engine(settings.catalog_url)
    try:
        async with create_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _record(session: AsyncSession, action: str, user: User, detail: str = "") -> None:
    """An audit event for a change made from the command line."""
    audit.record(
        session,
        action,
        caller=None,
        address="cli",
        username="(command line)",
        target=user.username,
        detail=detail,
    )


async def add_user(
    settings: Settings, name: str, password_hash: str | None, *, is_admin: bool
) -> User:
    """Create an account; ``InvalidInput`` for a bad or taken name."""

    async def work(session: AsyncSession) -> User:
        user = await users.add_user(session, name, password_hash, is_admin=is_admin)
        _record(session, "user_add", user, detail="admin" if is_admin else "member")
        return user

    return await _in_catalog(settings, work)


async def list_users(settings: Settings) -> list[User]:
    async def work(session: AsyncSession) -> list[User]:
        return list(await users.list_users(session))

    return await _in_catalog(settings, work)


async def set_disabled(settings: Settings, name: str, disabled: bool) -> bool:
    """Disable (or enable) an account; whether it exists."""

    async def work(session: AsyncSession) -> bool:
        user = await users.find_user(session, name)
        if user is None:
            return False
        await users.set_disabled(session, user, disabled)
        _record(session, "user_disable" if disabled else "user_enable", user)
        return True

    return await _in_catalog(settings, work)


async def create_token(settings: Settings, name: str, label: str) -> str | None:
    """A new API token for the account, or None when there is no such account."""

    async def work(session: AsyncSession) -> str | None:
        user = await users.find_user(session, name)
        if user is None:
            return None
        secret, _ = await api_tokens.create_token(session, user, label)
        _record(session, "token_create", user, detail=label)
        return secret

    return await _in_catalog(settings, work)


async def issue_setup_token(settings: Settings) -> str | None:
    """A fresh setup token while no account exists."""
    return await _in_catalog(settings, setup.issue_setup_token)
