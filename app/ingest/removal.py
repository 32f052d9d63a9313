"""Deleting a media: its row, then its bytes."""

from sqlalchemy.ext.asyncio import AsyncSession

from app import catalog
from app.catalog.facts import MediaFactsCache
from app.storage import Storage


async def remove_media(
    session: AsyncSession, storage: Storage, media_facts: MediaFactsCache, media_id: str
) -> None:
    """Delete the row and commit, then the bytes.

    In this order a failure leaves at worst bytes without a row (swept at start-up), never a
    row without bytes. A download already running on local storage keeps reading the
    unlinked file.
    """
    media = await catalog.delete_media(session, media_id)
    await session.commit()
    media_facts.forget(media_id)
    for key in (media.storage_key, media.poster_key, media.thumbnail_key, media.playback_key):
        if key:
            await storage.delete(key)
