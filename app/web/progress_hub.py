"""One watcher per process for every open ``/media/{id}/events`` stream.

The job row is the truth, whichever process or node runs the job. Instead of each stream
asking the catalog twice a second (2,000 open streams made 4,000 queries a second), one task
asks once per interval for every media someone watches and hands each stream the latest
state. Streams are capped per client address and per process.
"""

import asyncio
import logging
from collections import Counter

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import ProcessingJob
from app.errors import StreamportError
from app.processing.jobs import snapshot

logger = logging.getLogger("streamport")

POLL_SECONDS = 0.5
# Ids per query: far below any database's limit on bound parameters.
_IDS_PER_QUERY = 500

Snapshot = dict[str, object]


class TooManyStreams(StreamportError):
    status_code = 429
    detail = "Too many progress streams are open; close some and try again."


class Subscription:
    """One stream's view: the latest state, and a flag raised when it changes."""

    def __init__(self, media_id: str, client: str) -> None:
        self.media_id = media_id
        self.client = client
        self.latest: Snapshot | None = None
        self.gone = False  # the media was deleted: the stream ends
        self.changed = asyncio.Event()

    def offer(self, state: Snapshot | None) -> None:
        """Hand over the latest state; ``None`` when the media is gone."""
        if state is None:
            self.gone = True
            self.changed.set()
        elif state != self.latest:
            self.latest = state
            self.changed.set()

    async def next_change(self, wait_seconds: float) -> Snapshot | None:
        """The state once it differs from the last one taken, or ``None`` after
        ``wait_seconds`` (or once the media is gone: see ``gone``)."""
        try:
            async with asyncio.timeout(wait_seconds):
                await self.changed.wait()
        except TimeoutError:
            return None
        self.changed.clear()
        return self.latest


class ProgressHub:
    """Fans the catalog's job states out to every subscription, with one query per interval."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        max_streams: int,
        max_streams_per_client: int,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.max_streams = max_streams
        self.max_streams_per_client = max_streams_per_client
        self.poll_seconds = poll_seconds
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._per_client: Counter[str] = Counter()
        self._streams = 0
        self._poller: asyncio.Task[None] | None = None

    @property
    def streams(self) -> int:
        return self._streams

    def open(self, media_id: str, client: str, current: Snapshot) -> Subscription:
        """Start watching ``media_id`` from the ``current`` state; ``TooManyStreams`` past a
        cap. Every open is followed by one ``close``."""
        if self._streams >= self.max_streams:
            raise TooManyStreams()
        if self._per_client[client] >= self.max_streams_per_client:
            raise TooManyStreams(
                f"At most {self.max_streams_per_client} progress streams per client; "
                "close some and try again."
            )
        subscription = Subscription(media_id, client)
        subscription.latest = current
        self._subscriptions.setdefault(media_id, set()).add(subscription)
        self._per_client[client] += 1
        self._streams += 1
        self._ensure_polling()
        return subscription

    def close(self, subscription: Subscription) -> None:
        """Stop watching."""
        watchers = self._subscriptions.get(subscription.media_id)
        if watchers is None or subscription not in watchers:
            return
        watchers.discard(subscription)
        if not watchers:
            del self._subscriptions[subscription.media_id]
        self._per_client[subscription.client] -= 1
        if self._per_client[subscription.client] <= 0:
            del self._per_client[subscription.client]
        self._streams -= 1

    def _ensure_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while self._subscriptions:
            try:
                states = await self._read_states(list(self._subscriptions))
            except Exception:  # a supervisor loop: a failing catalog must not end the streams
                logger.exception("Reading processing states for event streams failed")
                states = {}
            for media_id, watchers in list(self._subscriptions.items()):
                if media_id in states:
                    for subscription in list(watchers):
                        subscription.offer(states[media_id])
            await asyncio.sleep(self.poll_seconds)

    async def _read_states(self, media_ids: list[str]) -> dict[str, Snapshot | None]:
        # Every media has its job row from the start, removed with it: no row, no media.
        states: dict[str, Snapshot | None] = dict.fromkeys(media_ids)
        async with self.sessionmaker() as session:
            for start in range(0, len(media_ids), _IDS_PER_QUERY):
                batch = media_ids[start : start + _IDS_PER_QUERY]
                jobs = await session.scalars(
                    select(ProcessingJob).where(ProcessingJob.media_id.in_(batch))
                )
                for job in jobs:
                    states[job.media_id] = snapshot(job)
        return states

    async def stop(self) -> None:
        """Stop polling (the process is stopping)."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
