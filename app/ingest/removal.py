"""Deleting a media: its row, then its bytes and every file derived from them."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import catalog
from app.catalog.facts import MediaFactsCache
from app.catalog.models import Media
from app.catalog.room import Ballast, write_with_room
from app.storage import Storage


async def remove_media(
    sessionmaker: async_sessionmaker[AsyncSession],
    ballast: Ballast,
    storage: Storage,
    media_facts: MediaFactsCache,
    media_id: str,
    *,
    before_delete: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> None:
    """Delete the row and commit, then the bytes.

    In this order a failure leaves at worst bytes without a row (swept at start-up), never a
    row without bytes. A download already running on local storage keeps reading the
    unlinked file. On a full disk the catalog's ballast makes room for the delete, and comes
    back once the bytes are gone. ``before_delete`` runs in the same transaction (a check
    that may refuse, a record of who deleted it).
    """

    async def delete_row(session: AsyncSession) -> tuple[Media, list[str]]:
        if before_delete is not None:
            await before_delete(session)
        return await catalog.delete_media(session, media_id)

    media, renditions = await write_with_room(sessionmaker, ballast, delete_row)
    media_facts.forget(media_id)
    derived = (media.poster_key, media.thumbnail_key, media.playback_key)
    for key in (media.storage_key, *derived, *renditions):
        if key:
            await storage.delete(key)
    await ballast.restore()
