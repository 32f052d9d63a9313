"""Share links: a signed URL that opens one media for anyone who has it, until it expires or
is deleted. The link carries the share's id and an HMAC of it, so a guessed or altered link
is refused without a query; the row says which media and until when."""

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.credentials import signed, unsign
from app.catalog.models import NOTE_MAX_CHARS, Share
from app.errors import InvalidInput, StreamportError

_PURPOSE = "share"
# Anything past a century is "never" in all but name; a bound keeps the date representable.
MAX_EXPIRES_IN_SECONDS = 100 * 365 * 86400


class ShareNotFound(StreamportError):
    status_code = 404
    detail = "No such share link."


class ShareGrant(NamedTuple):
    """What a share link opens, and until when (None: never expires)."""

    media_id: str
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _new_share_id() -> str:
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()


def share_token(key: bytes, share_id: str) -> str:
    """The secret part of a share link's URL."""
    return signed(key, _PURPOSE, share_id)


def share_id_from_token(key: bytes, token: str) -> str | None:
    """The share a token names, if its signature holds."""
    return unsign(key, _PURPOSE, token)


async def create_share(
    session: AsyncSession,
    media_id: str,
    created_by: int | None,
    *,
    expires_in_seconds: float | None,
    note: str = "",
) -> Share:
    """A new share link for ``media_id`` (flushed)."""
    now = datetime.now(UTC)
    if expires_in_seconds is not None:
        if not 0 < expires_in_seconds <= MAX_EXPIRES_IN_SECONDS:
            raise InvalidInput("expires_in must be a positive number of seconds (up to 100 years).")
    note = note.strip()
    if len(note) > NOTE_MAX_CHARS:
        raise InvalidInput(f"The note has at most {NOTE_MAX_CHARS} characters.")
    share = Share(
        id=_new_share_id(),
        media_id=media_id,
        created_by=created_by,
        note=note,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None,
    )
    session.add(share)
    await session.flush()
    return share


async def grant_for_share(session: AsyncSession, share_id: str) -> ShareGrant | None:
    """What the share opens, or None when it was deleted (with its media or on its own)."""
    row = (
        await session.execute(select(Share.media_id, Share.expires_at).where(Share.id == share_id))
    ).one_or_none()
    return ShareGrant(row[0], row[1]) if row is not None else None


async def list_shares(session: AsyncSession, media_id: str) -> Sequence[Share]:
    query = select(Share).where(Share.media_id == media_id).order_by(Share.created_at.desc())
    return (await session.scalars(query)).all()


async def get_share(session: AsyncSession, share_id: str) -> Share:
    share = await session.get(Share, share_id)
    if share is None:
        raise ShareNotFound()
    return share


async def delete_share(session: AsyncSession, share_id: str) -> None:
    await session.execute(delete(Share).where(Share.id == share_id))
