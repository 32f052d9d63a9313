"""What byte serving needs to know about a media, kept for a moment after each lookup.

Once processing is over, the facts that matter here (storage key, size, digest, type, dates,
file name, derived files and HLS renditions, owner and visibility) change rarely: a rename
changes the title only, and this process forgets an entry when it changes the visibility.
Facts of a media still being processed are not cached: its derived files are still to come.
A media can be deleted on any worker: its bytes then leave storage and a cached entry leads
to 404 all the same. How entries are refreshed is ``app.refreshing_cache``'s; other workers
see a change within ``max_age_seconds``.
"""

from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import FINAL_JOB_STATES
from app.catalog.queries import get_media_facts
from app.catalog.renditions import RenditionFacts, rendition_facts
from app.errors import MediaNotFound
from app.refreshing_cache import RefreshingCache


class MediaFacts(NamedTuple):
    """A media's byte-serving facts."""

    storage_key: str
    size: int
    sha256: str
    content_type: str
    modified_at: datetime
    filename: str
    poster_key: str | None
    thumbnail_key: str | None
    playback_key: str | None
    job_state: str | None
    owner_id: int | None
    visibility: str
    renditions: tuple[RenditionFacts, ...] = ()

    @property
    def settled(self) -> bool:
        """Whether processing is over, so that no derived file is still to come."""
        return self.job_state is None or self.job_state in FINAL_JOB_STATES


class MediaFactsCache(RefreshingCache[str, MediaFacts]):
    """Media id → ``MediaFacts``; facts of media still being processed are not kept."""

    def __init__(self, ttl_seconds: float, max_entries: int = 4096) -> None:
        super().__init__(
            ttl_seconds,
            max_entries=max_entries,
            keep=lambda facts: facts.settled,
            gone=MediaNotFound,
        )


async def lookup_media_facts(
    sessionmaker: async_sessionmaker[AsyncSession], cache: MediaFactsCache, media_id: str
) -> MediaFacts:
    """The facts for ``media_id`` from the cache or a short session; ``MediaNotFound`` if none."""

    async def load(media_id: str) -> MediaFacts:
        # A short session: a download that runs for an hour must not hold a connection.
        async with sessionmaker() as session:
            row = await get_media_facts(session, media_id)
            renditions = await rendition_facts(session, media_id)
        return MediaFacts(*row, renditions=renditions)

    return await cache.lookup(media_id, load)
