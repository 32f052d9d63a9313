"""The processing of one media: probe, posters, faststart, optional transcode."""

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.facts import MediaFactsCache
from app.catalog.kinds import media_kind
from app.catalog.models import Media
from app.errors import StreamportError
from app.processing import jobs
from app.processing.media_tools import MediaTools, ToolFailed
from app.processing.mp4_atoms import moov_before_mdat
from app.processing.probe import ProbeResult, browser_playable, is_mp4_family, poster_time
from app.storage import Storage

logger = logging.getLogger("streamport.processing")

POSTER_WIDTH = 1280
THUMBNAIL_WIDTH = 480
_REPORT_INTERVAL_SECONDS = 0.5
# How far a remuxed file's duration may differ from the original's and still be trusted.
_DURATION_TOLERANCE_SECONDS = 0.5


class JobLost(Exception):
    """The job is no longer this worker's: the media was deleted or the claim expired."""


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

    async def run(self, job: jobs.ClaimedJob) -> None:
        """Process one claimed job to its end state; never raises for a bad media file."""
        try:
            state, error = await self._process(job)
        except JobLost:
            logger.info("job %s: dropped (media deleted or claim lost)", job.id)
            return
        except ToolFailed as exc:
            state, error = "failed", str(exc)
        except OSError as exc:
            state, error = "failed", f"{type(exc).__name__}: {exc.strerror or exc}"
        except StreamportError as exc:  # storage unavailable, scratch disk full
            state, error = "failed", exc.detail
        async with self.sessionmaker() as session:
            await jobs.finish(session, job.id, self.worker, state, error)
            await session.commit()
        logger.info(
            "job %s (media %s): %s%s", job.id, job.media_id, state, f": {error}" if error else ""
        )

    async def _process(self, job: jobs.ClaimedJob) -> tuple[str, str | None]:
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
            await self._process_file(media, kind, source, progress)
        return "done", None

    async def _process_file(
        self, media: Media, kind: str, source: Path, progress: "_Reporter"
    ) -> None:
        probe = await self.tools.probe(source)
        if kind in ("video", "audio") and probe.video_codec is None and probe.audio_codec is None:
            raise ToolFailed("no audio or video stream could be read")
        playable = browser_playable(probe) if kind in ("video", "audio") else None
        await self._update_media(media.id, **_probe_columns(probe), playable=playable)

        if kind == "video" and probe.has_video:
            await progress("poster", 0.05)
            at = poster_time(probe.duration)
            poster = await self._derive(
                lambda target: self.tools.extract_frame(source, target, at, POSTER_WIDTH)
            )
            thumbnail = await self._derive(
                lambda target: self.tools.extract_frame(source, target, at, THUMBNAIL_WIDTH)
            )
            await self._update_media(
                media.id, replaced_keys=(media.poster_key, media.thumbnail_key),
                poster_key=poster, thumbnail_key=thumbnail,
            )  # fmt: skip
        elif kind == "image":
            await progress("poster", 0.05)
            thumbnail = await self._derive(
                lambda target: self.tools.extract_frame(source, target, 0.0, THUMBNAIL_WIDTH)
            )
            await self._update_media(
                media.id, replaced_keys=(media.thumbnail_key,), thumbnail_key=thumbnail
            )

        if kind == "video" and is_mp4_family(probe):
            in_order = await anyio.to_thread.run_sync(moov_before_mdat, source)
            if in_order is False:
                await self._faststart(media, source, probe, progress)
        if self.transcode and kind == "video" and playable is False:
            await self._transcode(media, source, probe, progress)

    async def _faststart(
        self, media: Media, source: Path, probe: ProbeResult, progress: "_Reporter"
    ) -> None:
        report = progress.stage("faststart")
        await report(0.0)

        digest: tuple[str, int] = ("", 0)

        async def remux(target: Path) -> None:
            nonlocal digest
            await self.tools.remux_faststart(source, target, probe.duration, report)
            await self._verify_remux(target, probe)
            digest = await anyio.to_thread.run_sync(_digest, target)

        new_key = await self._derive(remux)
        sha256, size = digest
        try:
            swapped = await self._swap_bytes(media, new_key, sha256, size)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.storage.delete(new_key)
            raise
        if not swapped:
            await self.storage.delete(new_key)
            raise JobLost()

    async def _verify_remux(self, path: Path, original: ProbeResult) -> None:
        remuxed = await self.tools.probe(path)
        if (remuxed.video_codec, remuxed.audio_codec) != (
            original.video_codec,
            original.audio_codec,
        ):
            raise ToolFailed("the remuxed file does not carry the same streams")
        if original.duration and (
            remuxed.duration is None
            or abs(remuxed.duration - original.duration) > _DURATION_TOLERANCE_SECONDS
        ):
            raise ToolFailed("the remuxed file does not last as long as the original")
        if await anyio.to_thread.run_sync(moov_before_mdat, path) is not True:
            raise ToolFailed("the remuxed file still has its index after the media data")

    async def _swap_bytes(self, media: Media, new_key: str, sha256: str, size: int) -> bool:
        """Point the catalog at the new bytes, only if it still points at the old ones."""
        async with self.sessionmaker() as session:
            result = await session.execute(
                update(Media)
                .where(Media.id == media.id, Media.storage_key == media.storage_key)
                .values(
                    storage_key=new_key, sha256=sha256, size=size, modified_at=datetime.now(UTC)
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        self.media_facts.forget(media.id)
        # A download already running keeps its open file; new requests on other workers may
        # still use the old key until their lookup cache expires, so the old bytes stay that
        # long. Should this process stop first, the start-up orphan sweep removes them.
        self._delete_later(media.storage_key)
        return True

    async def _transcode(
        self, media: Media, source: Path, probe: ProbeResult, progress: "_Reporter"
    ) -> None:
        report = progress.stage("transcode")
        await report(0.0)

        key = await self._derive(
            lambda target: self.tools.transcode_h264(source, target, probe.duration, report)
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


def _digest(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(2**20):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size
