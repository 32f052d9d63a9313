"""Browser sessions, kept in the catalog so that logout, disabling a user or a new password
end them on every worker and node. The cookie carries a random secret, signed."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.credentials import digest, new_secret, signed, unsign
from app.accounts.policy import Caller
from app.catalog.models import AuthSession, User

SESSION_DAYS = 30
_PURPOSE = "session"


async def start_session(
    session: AsyncSession, key: bytes, user: User, *, address: str, user_agent: str
) -> tuple[str, AuthSession]:
    """A new session for ``user``: the cookie value and the row (flushed)."""
    secret = new_secret()
    now = datetime.now(UTC)
    row = AuthSession(
        id=digest(secret),
        user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(days=SESSION_DAYS),
        address=address[:64],
        user_agent=user_agent[:255],
    )
    session.add(row)
    # Expired sessions go as new ones come, so the table does not grow for ever.
    await session.execute(delete(AuthSession).where(AuthSession.expires_at < now))
    await session.flush()
    return signed(key, _PURPOSE, secret), row


def session_id_from_cookie(key: bytes, cookie: str) -> str | None:
    """The session id a cookie names, if its signature holds (no query for forged ones)."""
    secret = unsign(key, _PURPOSE, cookie)
    return digest(secret) if secret is not None else None


async def caller_for_session(session: AsyncSession, session_id: str) -> Caller | None:
    """The user a live session belongs to, unless it expired or the user is disabled."""
    row = (
        await session.execute(
            select(User.id, User.username, User.is_admin)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(
                AuthSession.id == session_id,
                AuthSession.expires_at > datetime.now(UTC),
                ~User.disabled,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return Caller(user_id=row[0], username=row[1], is_admin=row[2], session_id=session_id)


async def end_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(AuthSession).where(AuthSession.id == session_id))


async def end_user_session(session: AsyncSession, user_id: int, session_id: str) -> bool:
    """End one of ``user_id``'s sessions; whether it was theirs and existed."""
    result = await session.execute(
        delete(AuthSession).where(AuthSession.id == session_id, AuthSession.user_id == user_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_sessions(session: AsyncSession, user_id: int) -> Sequence[AuthSession]:
    query = (
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.expires_at > datetime.now(UTC))
        .order_by(AuthSession.created_at.desc())
    )
    return (await session.scalars(query)).all()
