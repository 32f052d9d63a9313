"""Users in the catalog: add, find, change, list. Callers own the transaction and commit."""

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import USERNAME_MAX_CHARS, ApiToken, AuthSession, Media, User
from app.errors import InvalidInput, StreamportError

# Letters, digits and . _ - only: names appear in URLs, logs and the audit log.
_USERNAME = re.compile(r"^[\w.-]+$")


class UserNotFound(StreamportError):
    status_code = 404
    detail = "No such user."


def clean_username(raw: str) -> str:
    """The user name as stored (NFC, trimmed); ``InvalidInput`` unless acceptable."""
    name = unicodedata.normalize("NFC", raw.strip())
    if not name or len(name) > USERNAME_MAX_CHARS or not _USERNAME.fullmatch(name):
        raise InvalidInput(
            f"A user name has 1 to {USERNAME_MAX_CHARS} letters, digits, '.', '_' or '-'."
        )
    return name


def username_key(name: str) -> str:
    """What makes two names the same account: case does not count."""
    return unicodedata.normalize("NFKC", name).casefold()


async def count_users(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()


async def add_user(
    session: AsyncSession, name: str, password_hash: str | None, *, is_admin: bool = False
) -> User:
    """Create an account (flushed). The first admin is given the media nobody owns: those
    of an install upgraded from before accounts."""
    name = clean_username(name)
    key = username_key(name)
    if await session.scalar(select(User.id).where(User.username_key == key)) is not None:
        raise InvalidInput(f"The user name {name!r} is taken.")
    user = User(
        username=name,
        username_key=key,
        password_hash=password_hash,
        is_admin=is_admin,
        disabled=False,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    await session.flush()
    if is_admin:
        await session.execute(
            update(Media)
            .where(Media.owner_id.is_(None))
            .values(owner_id=user.id)
            .execution_options(synchronize_session=False)
        )
    return user


async def find_user(session: AsyncSession, name: str) -> User | None:
    """The account with this name (any case), if any."""
    return await session.scalar(select(User).where(User.username_key == username_key(name)))


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def list_users(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.username_key))).all()


async def set_password(session: AsyncSession, user: User, password_hash: str) -> None:
    """A new password ends every session of the user (the caller signs the current one in
    again if it should stay)."""
    user.password_hash = password_hash
    await session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))


async def set_disabled(session: AsyncSession, user: User, disabled: bool) -> None:
    """A disabled user's sessions end; their tokens stay but stop working while disabled."""
    user.disabled = disabled
    if disabled:
        await session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))


async def set_admin(session: AsyncSession, user: User, is_admin: bool) -> None:
    user.is_admin = is_admin


async def active_admins(session: AsyncSession) -> int:
    query = select(func.count()).select_from(User).where(User.is_admin, ~User.disabled)
    return (await session.execute(query)).scalar_one()


async def lock_active_admins(session: AsyncSession) -> None:
    """Hold the active admins' rows until the transaction ends, so that two changes that each
    leave one admin cannot pass side by side (PostgreSQL; SQLite's writes queue anyway)."""
    query = select(User.id).where(User.is_admin, ~User.disabled).with_for_update()
    await session.execute(query)


async def token_count(session: AsyncSession, user_id: int) -> int:
    query = select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user_id)
    return (await session.execute(query)).scalar_one()
