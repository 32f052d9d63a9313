"""The processing of one media: probe, posters, optional transcode.

The uploaded bytes are only ever read: everything processing makes (posters, thumbnails, a
playable copy) is a separate derived file under a key of its own.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.facts import MediaFactsCache
from app.catalog.kinds import media_kind
from app.catalog.models import Media
from app.errors import StreamportError
from app.processing import jobs
from app.processing.containers import Container, sniff_container
from app.processing.media_tools import ImageTooLarge, MediaTools, ToolFailed
from app.processing.probe import ProbeResult, browser_playable, poster_time, scrub_paths
from app.storage import Storage
from app.storage.reading import open_for_reading

logger = logging.getLogger("streamport.processing")

POSTER_WIDTH = 1280
THUMBNAIL_WIDTH = 480
_REPORT_INTERVAL_SECONDS = 0.5
# Enough of a file's start to tell its container.
_HEAD_BYTES = 8192
# Below this much room a transcode is not even tried.
_MIN_TRANSCODE_ROOM_BYTES = 16 * 2**20

# Extends the running job's deadline to this many seconds from now (never shortens it).
ExtendDeadline = Callable[[float], None]


class JobLost(Exception):
    """The job is no longer this worker's: the media was deleted or the claim expired."""


class Skip(Exception):
    """This media is not processed, by rule rather than by failure; the message says why."""


class Processor:
    """Runs claimed jobs for one worker."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        storage: Storage,
        tools: MediaTools,
        media_facts: MediaFactsCache,
        worker: str,
        *,
        transcode: bool,
        old_bytes_grace_seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.storage = storage
        self.tools = tools
        self.media_facts = media_facts
        self.worker = worker
        self.transcode = transcode
        self.old_bytes_grace_seconds = old_bytes_grace_seconds
        self._background: set[asyncio.Task[None]] = set()

    async def run(self, job: jobs.ClaimedJob, extend_deadline: ExtendDeadline) -> None:
        """Process one claimed job to its end state; never raises for a bad media file."""
        try:
            state, error = await self._process(job, extend_deadline)
        except JobLost:
            logger.info("job %s: dropped (media deleted or claim lost)", job.id)
            return
        except Skip as exc:
            state, error = "skipped", str(exc)
        except ToolFailed as exc:
            state, error = "failed", str(exc)
        except OSError as exc:
            # Logged whole; shown without the server's paths.
            logger.warning("job %s: %r", job.id, exc)
            state, error = "failed", scrub_paths(f"{type(exc).__name__}: {exc.strerror or exc}")
        except StreamportError as exc:  # storage unavailable, scratch disk full
            state, error = "failed", exc.detail
        async with self.sessionmaker() as session:
            await jobs.finish(session, job.id, self.worker, state, error)
            await session.commit()
        logger.info(
            "job %s (media %s): %s%s", job.id, job.media_id, state, f": {error}" if error else ""
        )

    async def _process(
        self, job: jobs.ClaimedJob, extend_deadline: ExtendDeadline
    ) -> tuple[str, str | None]:
        if job.attempts > jobs.MAX_ATTEMPTS:
            return "failed", f"gave up after {jobs.MAX_ATTEMPTS} interrupted attempts"
        async with self.sessionmaker() as session:
            media = await session.get(Media, job.media_id)
        if media is None:
            raise JobLost()
        kind = media_kind(media.content_type)
        if kind == "file":
            return "skipped", "not a video, audio or image file"
        if not self.tools.available:
            return "skipped", "ffmpeg and ffprobe are not installed on the server"
        progress = _Reporter(self.sessionmaker, job.id, self.worker)
        await progress("probing", 0.02)
        # ffmpeg needs a path: the stored file itself, or a scratch copy of an S3 object.
        async with self.storage.local_copy(media.storage_key) as source:
            container = sniff_container(await _read_head(source))
            if container is None:
                raise Skip(
                    "its content is not a video, audio or image format Streamport opens "
                    "(playlists, manifests and scripts never are)"
                )
            if container.is_image != (kind == "image"):
                raise Skip(f"its content is not the {kind} its type says")
            try:
                await self._process_file(media, kind, source, container, progress, extend_deadline)
            except ImageTooLarge as exc:
                raise Skip(f"not processed: {exc}") from None
        return "done", None

    async def _process_file(
        self,
        media: Media,
        kind: str,
        source: Path,
        container: Container,
        progress: "_Reporter",
        extend_deadline: ExtendDeadline,
    ) -> None:
        probe = await self.tools.probe(source, container)
        if kind in ("video", "audio") and probe.video_codec is None and probe.audio_codec is None:
            raise ToolFailed("no audio or video stream could be read")
        if kind == "image" and not probe.has_video:
            raise ToolFailed("no picture could be read")
        playable = browser_playable(probe) if kind in ("video", "audio") else None
        await self._update_media(media.id, **_probe_columns(probe), playable=playable)

        if kind == "video" and probe.has_video:
            await progress("poster", 0.05)
            at = poster_time(probe.duration)
            poster = await self._frame(source, container, at, POSTER_WIDTH)
            thumbnail = await self._frame(source, container, at, THUMBNAIL_WIDTH)
            await self._update_media(
                media.id, replaced_keys=(media.poster_key, media.thumbnail_key),
                poster_key=poster, thumbnail_key=thumbnail,
            )  # fmt: skip
        elif kind == "image":
            await progress("poster", 0.05)
            thumbnail = await self._frame(source, container, 0.0, THUMBNAIL_WIDTH)
            await self._update_media(
                media.id, replaced_keys=(media.thumbnail_key,), thumbnail_key=thumbnail
            )

        if self.transcode and kind == "video" and playable is False and probe.has_video:
            extend_deadline(
                self.tools.limits.job_seconds(media.size, probe.duration, transcode=True)
            )
            await self._transcode(media, source, container, probe, progress)

    async def _frame(self, source: Path, container: Container, at: float, width: int) -> str:
        """A poster or thumbnail from ``at`` seconds in; never an empty file."""

        async def produce(target: Path) -> None:
            await self.tools.extract_frame(source, container, target, at, width)
            if await _size(target) == 0 and at > 0:
                # ffmpeg exits 0 having written nothing when no frame follows ``at`` (a
                # video track shorter than the audio the duration comes from): try the start.
                await self.tools.extract_frame(source, container, target, 0.0, width)
            if await _size(target) == 0:
                raise ToolFailed("ffmpeg could not make a picture of it (no frame decoded)")

        return await self._derive(produce)

    async def _transcode(
        self,
        media: Media,
        source: Path,
        container: Container,
        probe: ProbeResult,
        progress: "_Reporter",
    ) -> None:
        report = progress.stage("transcode")
        await report(0.0)
        # The copy may take what is free above the disk's reserve, and not a byte more.
        room = await anyio.to_thread.run_sync(self.storage.free_space.room)
        if room < _MIN_TRANSCODE_ROOM_BYTES:
            raise ToolFailed("not enough free disk space to make a playable copy")

        key = await self._derive(
            lambda target: self.tools.transcode_h264(
                source, container, target, probe.duration, media.size, report, room
            )
        )
        await self._update_media(media.id, replaced_keys=(media.playback_key,), playback_key=key)

    async def _derive(self, produce: Callable[[Path], Awaitable[None]]) -> str:
        """Run ``produce`` into a locked scratch file and store the result under a new key."""
        partial = await self.storage.scratch.open_partial()
        try:
            await produce(partial.path)
        except BaseException:
            await partial.discard()
            raise
        return await self.storage.store_scratch(partial)

    async def _update_media(
        self, media_id: str, replaced_keys: tuple[str | None, ...] = (), **values: object
    ) -> None:
        """Write columns of a media; if it was deleted meanwhile, drop new derived files."""
        async with self.sessionmaker() as session:
            result = await session.execute(
                update(Media)
                .where(Media.id == media_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        new_keys = [v for k, v in values.items() if k.endswith("_key") and isinstance(v, str)]
        if result.rowcount != 1:  # type: ignore[attr-defined]
            for key in new_keys:
                await self.storage.delete(key)
            raise JobLost()
        self.media_facts.forget(media_id)
        for key in replaced_keys:
            if key:
                self._delete_later(key)

    def _delete_later(self, key: str) -> None:
        async def delete() -> None:
            await asyncio.sleep(self.old_bytes_grace_seconds)
            await self.storage.delete(key)

        task = asyncio.ensure_future(delete())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Drop the delayed deletions (the process is stopping); the start-up orphan sweep
        removes those files later."""
        for task in list(self._background):
            task.cancel()
        self._background.clear()


class _Reporter:
    """Writes step and progress to the job row, at most twice a second, renewing the lease."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], job_id: int, worker: str
    ) -> None:
        self.sessionmaker = sessionmaker
        self.job_id = job_id
        self.worker = worker
        self._last_step: str | None = None
        self._last_at = 0.0

    def stage(self, step: str) -> Callable[[float], Awaitable[None]]:
        """A callback reporting the fraction done of a long ``step`` (ffmpeg's progress),
        mapped to 15–95 % of the job."""

        async def report(fraction: float) -> None:
            await self(step, 0.15 + 0.8 * fraction)

        return report

    async def __call__(self, step: str, progress: float) -> None:
        now = time.monotonic()
        if step == self._last_step and now - self._last_at < _REPORT_INTERVAL_SECONDS:
            return
        self._last_step, self._last_at = step, now
        async with self.sessionmaker() as session:
            ours = await jobs.report(
                session, self.job_id, self.worker, step=step, progress=round(progress, 4)
            )
            await session.commit()
        if not ours:
            raise JobLost()


def _probe_columns(probe: ProbeResult) -> dict[str, object]:
    return {
        "duration": probe.duration,
        "width": probe.width,
        "height": probe.height,
        "video_codec": probe.video_codec,
        "audio_codec": probe.audio_codec,
        "bitrate": probe.bitrate,
        "container": probe.container,
    }


async def _read_head(path: Path) -> bytes:
    async with open_for_reading(path) as handle:
        return await handle.read(_HEAD_BYTES)


async def _size(path: Path) -> int:
    return (await anyio.Path(path).stat()).st_size
