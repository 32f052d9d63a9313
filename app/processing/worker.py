"""The processing worker: asyncio tasks inside the server that take jobs from the catalog."""

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.facts import MediaFactsCache
from app.catalog.models import Media
from app.processing import jobs
from app.processing.limits import ProcessingLimits
from app.processing.media_tools import MediaTools
from app.processing.playback_plan import PlaybackOptions
from app.processing.processor import Processor
from app.storage import Storage

logger = logging.getLogger("streamport.processing")

# Uploads to this process wake the worker at once; this catches other processes' uploads.
POLL_SECONDS = 2.0
# Also how soon a job notices that its media was deleted.
RENEW_SECONDS = 5.0
STOP_SECONDS = 10.0


class ProcessingWorker:
    """Runs up to ``concurrency`` jobs at a time until stopped."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        storage: Storage,
        media_facts: MediaFactsCache,
        *,
        concurrency: int,
        playback: PlaybackOptions,
        old_bytes_grace_seconds: float,
        limits: ProcessingLimits,
        tools: MediaTools | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.concurrency = concurrency
        self.identity = jobs.worker_identity()
        self.limits = limits
        self.tools = tools or MediaTools.locate(limits)
        self.processor = Processor(
            sessionmaker,
            storage,
            self.tools,
            media_facts,
            self.identity,
            playback=playback,
            old_bytes_grace_seconds=old_bytes_grace_seconds,
        )
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """New jobs were queued: look now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Recover jobs of dead workers, then start the job loops."""
        if not self.tools.available:
            logger.warning(
                "ffmpeg/ffprobe not found on PATH: uploads and playback work, but media are "
                "not processed (no posters, durations or faststart); their jobs are skipped"
            )
        await self._requeue_abandoned(at_start=True)
        if self.concurrency <= 0:
            return
        self._tasks = [asyncio.ensure_future(self._loop()) for _ in range(self.concurrency)]
        self._tasks.append(asyncio.ensure_future(self._housekeeping()))

    async def stop(self) -> None:
        """Cancel the loops; a job in progress goes back to the queue for the next start."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, still_running = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            if still_running:
                logger.error("%d processing task(s) did not stop in time", len(still_running))
        self._tasks.clear()
        await self.processor.close()

    async def _loop(self) -> None:
        while True:
            async with self.sessionmaker() as session:
                job = await jobs.claim_next(session, self.identity)
                await session.commit()
            if job is None:
                self._wake.clear()
                # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that
                # arrives as the wait ends, and this loop would then outlive stop().
                with suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wake.wait()
                continue
            try:
                await self._run_with_lease(job)
            except Exception:  # a supervisor loop: report, pause, keep serving the queue
                logger.exception("processing job %s crashed", job.id)
                await asyncio.sleep(POLL_SECONDS)

    async def _run_with_lease(self, job: jobs.ClaimedJob) -> None:
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()
        try:
            # The job's deadline, which the processor extends once it knows what a step
            # needs: past it the lease is no longer renewed and the job fails. Each tool run
            # has its own, shorter limit; this one catches a hang of our own. Losing the lease
            # (the media was deleted, or another worker took the job over) ends it at once.
            async with asyncio.timeout(await self._first_deadline(job)) as deadline:

                def extend(seconds: float) -> None:
                    when = loop.time() + seconds
                    if deadline.when() is None or when > deadline.when():  # type: ignore[operator]
                        deadline.reschedule(when)

                def stop_now() -> None:
                    lost.set()
                    deadline.reschedule(loop.time())

                renewer = asyncio.ensure_future(self._renew(job, stop_now))
                try:
                    await self.processor.run(job, extend)
                finally:
                    renewer.cancel()
                    with suppress(asyncio.CancelledError):
                        await renewer
        except TimeoutError:
            if lost.is_set():
                logger.info("job %s: stopped (media deleted or claim lost)", job.id)
                return
            logger.error("processing job %s passed its deadline and was stopped", job.id)
            async with self.sessionmaker() as session:
                await jobs.finish(
                    session, job.id, self.identity, "failed", "processing took too long"
                )
                await session.commit()
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                async with self.sessionmaker() as session:
                    await jobs.release(session, job.id, self.identity)
                    await session.commit()
            raise

    async def _first_deadline(self, job: jobs.ClaimedJob) -> float:
        async with self.sessionmaker() as session:
            media = await session.get(Media, job.media_id)
        size = media.size if media is not None else 0
        return self.limits.job_seconds(size, None, transcode=False)

    async def _renew(self, job: jobs.ClaimedJob, stop: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            async with self.sessionmaker() as session:
                ours = await jobs.renew(session, job.id, self.identity)
                await session.commit()
            if not ours:
                stop()
                return

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(jobs.LEASE_SECONDS / 2)
            await self._requeue_abandoned(at_start=False)

    async def _requeue_abandoned(self, *, at_start: bool) -> None:
        async with self.sessionmaker() as session:
            holders = await jobs.running_workers(session)
            dead = {worker for worker in holders if jobs.is_dead_local_worker(worker)}
            count = await jobs.requeue_abandoned(session, dead)
            await session.commit()
        if count:
            logger.info("Requeued %d interrupted processing job(s)", count)
        if count or at_start:
            self.wake()
