"""API tokens: bearer credentials for scripts, curl, aria2c and ffmpeg. Shown once; the
catalog keeps their SHA-256."""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.credentials import digest, new_api_token
from app.accounts.policy import Caller
from app.catalog.models import ApiToken, User

LABEL_MAX_CHARS = 100


async def create_token(session: AsyncSession, user: User, label: str = "") -> tuple[str, ApiToken]:
    """A new token for ``user``: the secret (to show once) and the row (flushed)."""
    secret = new_api_token()
    row = ApiToken(
        token_hash=digest(secret),
        user_id=user.id,
        label=label.strip()[:LABEL_MAX_CHARS],
        created_at=datetime.now(UTC),
    )
    session.add(row)
    await session.flush()
    return secret, row


async def caller_for_token(session: AsyncSession, token_hash: str) -> Caller | None:
    """The user a token acts as, unless it was revoked or the user is disabled."""
    row = (
        await session.execute(
            select(User.id, User.username, User.is_admin)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash, ~User.disabled)
        )
    ).one_or_none()
    if row is None:
        return None
    return Caller(user_id=row[0], username=row[1], is_admin=row[2])


async def list_tokens(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    return (await session.scalars(query)).all()


async def revoke_token(session: AsyncSession, user_id: int, token_id: int) -> ApiToken | None:
    """Delete one of ``user_id``'s tokens; the row it was, or None."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        return None
    await session.execute(delete(ApiToken).where(ApiToken.id == token_id))
    return row
