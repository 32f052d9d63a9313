"""A video's HLS renditions in the catalog. Callers own the transaction, as with ``queries``."""

from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Media, Rendition


class RenditionFacts(NamedTuple):
    """What the master playlist and the segment route need of a rendition."""

    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    storage_key: str


async def replace_renditions(
    session: AsyncSession, media_id: str, renditions: list[Rendition]
) -> list[str] | None:
    """Make ``renditions`` the media's only ones; the storage keys of those they replace, or
    None when the media is gone (the caller then deletes the new files)."""
    # Locked (PostgreSQL) so that a delete running now either sees these renditions or is
    # seen to have happened (see ``queries.delete_media``).
    locked = select(Media.id).where(Media.id == media_id).with_for_update()
    if await session.scalar(locked) is None:
        return None
    old = list(
        await session.scalars(select(Rendition.storage_key).where(Rendition.media_id == media_id))
    )
    await session.execute(delete(Rendition).where(Rendition.media_id == media_id))
    for rendition in renditions:
        rendition.media_id = media_id
        session.add(rendition)
    return old


async def rendition_facts(session: AsyncSession, media_id: str) -> tuple[RenditionFacts, ...]:
    """The media's renditions, highest first (none for most media)."""
    rows = await session.execute(
        select(
            Rendition.width,
            Rendition.height,
            Rendition.bandwidth,
            Rendition.average_bandwidth,
            Rendition.codecs,
            Rendition.storage_key,
        )
        .where(Rendition.media_id == media_id)
        .order_by(Rendition.height.desc())
    )
    return tuple(RenditionFacts(*row) for row in rows)


async def rendition_playlist(session: AsyncSession, storage_key: str) -> str | None:
    """The stored media playlist of the rendition in ``storage_key``, if it still exists."""
    return await session.scalar(
        select(Rendition.playlist).where(Rendition.storage_key == storage_key)
    )
