"""What byte serving needs to know about a media, kept for a moment after each lookup.

A catalog lookup costs more than the rest of a small range request together, and players ask
for many ranges of the same file in a row. Once processing is over, the facts that matter here
(storage key, size, digest, type, dates, file name, derived files) no longer change; a rename
changes the title only. Facts of a media still being processed are not cached: its derived
files are still to come. A media can be deleted on any worker: its bytes then leave
storage and a cached entry leads to 404 all the same. Entries still expire after a short,
configurable time.
"""

import time
from collections import OrderedDict
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import FINAL_JOB_STATES
from app.catalog.queries import get_media_facts


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

    @property
    def settled(self) -> bool:
        """Whether processing is over, so that no derived file is still to come."""
        return self.job_state is None or self.job_state in FINAL_JOB_STATES


class MediaFactsCache:
    """A bounded, time-limited map from media id to ``MediaFacts``."""

    def __init__(self, ttl_seconds: float, max_entries: int = 4096) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, MediaFacts]] = OrderedDict()

    def get(self, media_id: str) -> MediaFacts | None:
        """The cached facts, if still fresh."""
        entry = self._entries.get(media_id)
        if entry is None:
            return None
        stored_at, facts = entry
        if time.monotonic() - stored_at > self.ttl_seconds:
            del self._entries[media_id]
            return None
        self._entries.move_to_end(media_id)
        return facts

    def put(self, media_id: str, facts: MediaFacts) -> None:
        """Remember facts just read from the catalog."""
        if self.ttl_seconds <= 0:
            return
        self._entries[media_id] = (time.monotonic(), facts)
        self._entries.move_to_end(media_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, media_id: str) -> None:
        """Drop an entry after this process changed the media."""
        self._entries.pop(media_id, None)


async def lookup_media_facts(
    sessionmaker: async_sessionmaker[AsyncSession], cache: MediaFactsCache, media_id: str
) -> MediaFacts:
    """The facts for ``media_id`` from the cache or a short session; ``MediaNotFound`` if none."""
    facts = cache.get(media_id)
    if facts is None:
        # A short session: a download that runs for an hour must not hold a connection.
        async with sessionmaker() as session:
            row = await get_media_facts(session, media_id)
        facts = MediaFacts(*row)
        # Facts of media still being processed gain derived files: not kept until then.
        if facts.settled:
            cache.put(media_id, facts)
    return facts
