"""Queries and changes to the catalog of media. Callers own the transaction and commit."""

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Media, ProcessingJob, Rendition, User
from app.errors import MediaNotFound


@dataclass(frozen=True)
class MediaPage:
    """One page of catalog results."""

    items: Sequence[Media]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def new_media_id() -> str:
    """A short, unguessable, URL-safe id."""
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_media(
    session: AsyncSession,
    q: str = "",
    page: int = 1,
    per_page: int = 24,
    *,
    also_owner_id: int | None = None,
) -> MediaPage:
    """Public media, newest first, and every media of ``also_owner_id`` whatever its
    visibility (see ``accounts.policy.listed_owner``); every word of ``q`` must appear in the
    title or the file name."""
    listed = Media.visibility == "public"
    if also_owner_id is not None:
        listed = or_(listed, Media.owner_id == also_owner_id)
    count_query = select(func.count()).select_from(Media).where(listed)
    items_query = select(Media).where(listed).order_by(Media.created_at.desc(), Media.id.desc())
    for term in q.split():
        pattern = f"%{_escape_like(term)}%"
        matches = or_(
            Media.title.ilike(pattern, escape="\\"), Media.filename.ilike(pattern, escape="\\")
        )
        count_query = count_query.where(matches)
        items_query = items_query.where(matches)
    total = (await session.execute(count_query)).scalar_one()
    offset = (page - 1) * per_page
    items = (await session.scalars(items_query.offset(offset).limit(per_page))).all()
    return MediaPage(items=items, total=total, page=page, per_page=per_page)


async def get_media(session: AsyncSession, media_id: str) -> Media:
    """The media with this id, or ``MediaNotFound``."""
    media = await session.get(Media, media_id)
    if media is None:
        raise MediaNotFound()
    return media


async def get_media_facts(session: AsyncSession, media_id: str) -> tuple[Any, ...]:
    """What byte serving needs of a media (see ``MediaFacts``), read without loading the ORM
    object: this runs for every byte request that misses the lookup cache."""
    query = (
        select(
            Media.storage_key,
            Media.size,
            Media.sha256,
            Media.content_type,
            func.coalesce(Media.modified_at, Media.created_at),
            Media.filename,
            Media.poster_key,
            Media.thumbnail_key,
            Media.playback_key,
            ProcessingJob.state,
            Media.owner_id,
            Media.visibility,
        )
        .outerjoin(ProcessingJob, ProcessingJob.media_id == Media.id)
        .where(Media.id == media_id)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise MediaNotFound()
    return tuple(row)


async def add_media(
    session: AsyncSession,
    *,
    title: str,
    filename: str,
    content_type: str,
    size: int,
    sha256: str,
    storage_key: str,
    queue_key: str = "",
    fair_rank: int = 0,
    created_at: datetime | None = None,
    owner_id: int | None = None,
    visibility: str = "private",
) -> Media:
    """Record stored bytes in the catalog with their pending processing job (flushed, not
    committed); the job's place in the queue comes from ``next_fair_rank``."""
    now = datetime.now(UTC)
    media = Media(
        id=new_media_id(),
        title=title,
        filename=filename,
        content_type=content_type,
        size=size,
        sha256=sha256,
        storage_key=storage_key,
        created_at=created_at or now,
        owner_id=owner_id,
        visibility=visibility,
        # A new media has none; said here so that reading them never needs a query.
        renditions=[],
    )
    # Through the relationship, so the new row carries its job without a query.
    media.job = ProcessingJob(
        media_id=media.id,
        state="pending",
        progress=0.0,
        attempts=0,
        queue_key=queue_key,
        fair_rank=fair_rank,
        created_at=now,
        updated_at=now,
    )
    session.add(media)
    await session.flush()
    # Loaded now: an async session cannot load it lazily when the row is presented.
    await session.refresh(media, ["owner"])
    return media


async def next_fair_rank(session: AsyncSession, queue_key: str) -> int:
    """The queue rank for the next job of ``queue_key``; a batch takes consecutive ranks.

    Jobs are claimed lowest rank first. A key's new job ranks after its own unfinished ones,
    but never before the rank the queue has reached: so a key with a thousand jobs queued
    ranks its thousandth job a thousand places back, and a newcomer's first job goes straight
    to the front, whatever was queued before (start-time fair queueing, with ranks for time).
    """
    unfinished = ProcessingJob.state.in_(("pending", "running"))
    reached = await session.scalar(select(func.min(ProcessingJob.fair_rank)).where(unfinished))
    if reached is None:
        reached = await session.scalar(select(func.max(ProcessingJob.fair_rank))) or 0
    own_last = await session.scalar(
        select(func.max(ProcessingJob.fair_rank)).where(
            ProcessingJob.queue_key == queue_key, unfinished
        )
    )
    return reached if own_last is None else max(reached, own_last + 1)


async def update_media(
    session: AsyncSession,
    media_id: str,
    *,
    title: str | None = None,
    visibility: str | None = None,
) -> Media:
    """Give a media a new title and/or visibility; ``MediaNotFound`` if it is gone, even if a
    concurrent delete took it between the read and the write."""
    values: dict[str, str] = {}
    if title is not None:
        values["title"] = title
    if visibility is not None:
        values["visibility"] = visibility
    if values:
        result = await session.execute(
            update(Media)
            .where(Media.id == media_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise MediaNotFound()
    media = await get_media(session, media_id)
    await session.refresh(media, list(values) or None)
    return media


async def delete_media(session: AsyncSession, media_id: str) -> tuple[Media, list[str]]:
    """Remove a media from the catalog; returns the row and its renditions' keys, so the
    caller can delete its bytes. Of two concurrent deletes, one gets ``MediaNotFound``.

    The row is locked first (PostgreSQL): renditions being catalogued meanwhile either
    committed before, and their keys are read here, or wait and then find no media."""
    await session.execute(select(Media.id).where(Media.id == media_id).with_for_update())
    media = await get_media(session, media_id)
    renditions = list(
        await session.scalars(select(Rendition.storage_key).where(Rendition.media_id == media_id))
    )
    result = await session.execute(delete(Media).where(Media.id == media_id))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise MediaNotFound()
    return media, renditions


async def find_by_sha256(session: AsyncSession, sha256: str) -> Media | None:
    """Some media holding exactly these bytes, if any."""
    return await session.scalar(select(Media).where(Media.sha256 == sha256).limit(1))


async def storage_keys(session: AsyncSession) -> set[str]:
    """Every storage key the catalog points at: media bytes and derived files."""
    rows = await session.execute(
        select(Media.storage_key, Media.poster_key, Media.thumbnail_key, Media.playback_key)
    )
    renditions = await session.scalars(select(Rendition.storage_key))
    return {key for row in rows for key in row if key} | set(renditions)


async def first_admin_id(session: AsyncSession) -> int | None:
    """The oldest admin account, who owns what nobody uploaded (scanned files)."""
    return await session.scalar(select(User.id).where(User.is_admin).order_by(User.id).limit(1))
