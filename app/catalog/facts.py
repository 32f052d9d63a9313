"""What byte serving needs to know about a media, kept for a moment after each lookup.

A catalog lookup costs more than the rest of a small range request together, and players ask
for many ranges of the same file in a row. Once processing is over, the facts that matter here
(storage key, size, digest, type, dates, file name, derived files) no longer change; a rename
changes the title only. Facts of a media still being processed are not cached: its derived
files are still to come. A media can be deleted on any worker: its bytes then leave storage
and a cached entry leads to 404 all the same.

Entries are fresh for a configurable time. A request that finds one older serves it still and
starts a refresh in the background, one per media however many ask: a query no request waits
for. Only an entry older than twice that time, or none, makes requests wait, and those waiting
for the same media share one query. Under load a queue of identical queries, each waiting for
the interpreter's lock behind a busy event loop, would otherwise hold every request of a
popular file for tens of milliseconds every few seconds.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import FINAL_JOB_STATES
from app.catalog.queries import get_media_facts
from app.errors import MediaNotFound

logger = logging.getLogger("streamport")


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
    """A bounded, time-limited map from media id to ``MediaFacts``, refreshed ahead of need."""

    def __init__(self, ttl_seconds: float, max_entries: int = 4096) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, MediaFacts]] = OrderedDict()
        # The query each media's callers share; every query started, for aclose.
        self._loads: dict[str, asyncio.Task[MediaFacts]] = {}
        self._running: set[asyncio.Task[MediaFacts]] = set()

    @property
    def max_age_seconds(self) -> float:
        """How old facts served from here can be: stale ones are served for one more TTL."""
        return 2 * self.ttl_seconds

    async def lookup(
        self, media_id: str, load: Callable[[str], Awaitable[MediaFacts]]
    ) -> MediaFacts:
        """The facts for ``media_id``: cached, or from ``load`` (shared by concurrent callers)."""
        entry = self._entries.get(media_id)
        if entry is not None:
            stored_at, facts = entry
            age = time.monotonic() - stored_at
            if age <= self.ttl_seconds:
                self._entries.move_to_end(media_id)
                return facts
            if age <= self.max_age_seconds:
                self._start_load(media_id, load)
                return facts
            del self._entries[media_id]
        # Shielded: a caller that gives up does not cancel the others' query.
        return await asyncio.shield(self._start_load(media_id, load))

    def forget(self, media_id: str) -> None:
        """Drop an entry after this process changed the media; a query under way no longer
        counts (it may have read the row before the change)."""
        self._entries.pop(media_id, None)
        self._loads.pop(media_id, None)

    async def aclose(self) -> None:
        """Stop the queries still running (the process is stopping)."""
        running = list(self._running)
        self._loads.clear()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _start_load(
        self, media_id: str, load: Callable[[str], Awaitable[MediaFacts]]
    ) -> "asyncio.Task[MediaFacts]":
        task = self._loads.get(media_id)
        if task is None:
            task = asyncio.ensure_future(self._load(media_id, load))
            self._loads[media_id] = task
            self._running.add(task)
            task.add_done_callback(lambda done: self._finished(media_id, done))
        return task

    async def _load(
        self, media_id: str, load: Callable[[str], Awaitable[MediaFacts]]
    ) -> MediaFacts:
        # Dated from before the query: the row may have changed while it ran.
        read_at = time.monotonic()
        facts = await load(media_id)
        current = self._loads.get(media_id) is asyncio.current_task()
        # Facts of media still being processed gain derived files: not kept until then.
        if current and facts.settled and self.ttl_seconds > 0:
            self._entries[media_id] = (read_at, facts)
            self._entries.move_to_end(media_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return facts

    def _finished(self, media_id: str, task: "asyncio.Task[MediaFacts]") -> None:
        self._running.discard(task)
        if self._loads.get(media_id) is task:
            del self._loads[media_id]
        if task.cancelled():
            return
        error = task.exception()  # retrieved here: a refresh may have no one waiting for it
        if isinstance(error, MediaNotFound):
            self._entries.pop(media_id, None)
        elif error is not None:
            logger.warning("Looking up media %s failed: %r", media_id, error)


async def lookup_media_facts(
    sessionmaker: async_sessionmaker[AsyncSession], cache: MediaFactsCache, media_id: str
) -> MediaFacts:
    """The facts for ``media_id`` from the cache or a short session; ``MediaNotFound`` if none."""

    async def load(media_id: str) -> MediaFacts:
        # A short session: a download that runs for an hour must not hold a connection.
        async with sessionmaker() as session:
            row = await get_media_facts(session, media_id)
        return MediaFacts(*row)

    return await cache.lookup(media_id, load)
