"""The processing of one media: probe, posters, optional transcode.

The uploaded bytes are only ever read: everything processing makes (posters, thumbnails, a
playable copy) is a separate derived file under a key of its own.
"""

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from sqlalchemy import update
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.facts import MediaFactsCache
from app.catalog.kinds import media_kind
from app.catalog.models import Media, Rendition
from app.catalog.renditions import replace_renditions
from app.errors import StreamportError
from app.processing import jobs
from app.processing.codec_strings import codecs_parameter
from app.processing.containers import MP4_CONTAINER, Container, sniff_container
from app.processing.hls import (
    MAX_PLAYLIST_BYTES,
    PlaylistError,
    master_variant_facts,
    parse_media_playlist,
)
from app.processing.ladder import Rung, ladder_for, scale_to, short_side
from app.processing.media_tools import ImageTooLarge, LadderFiles, MediaTools, ToolFailed
from app.processing.playback_plan import PlaybackOptions, PlaybackPlan, plan_playback
from app.processing.probe import ProbeResult, poster_time, scrub_paths
from app.storage import Storage
from app.storage.reading import open_for_reading
from app.storage.scratch import PartialFile

logger = logging.getLogger("streamport.processing")

POSTER_WIDTH = 1280
# What an image's page shows instead of the original (which may be 16,000 pixels across).
IMAGE_VIEW_WIDTH = 2048
# A transcoded copy is at most 1080p: a 4K H.264 copy would cost four times the encoding and
# the disk, and players that want more get the original (or the HLS ladder) anyway.
TRANSCODE_MAX_SHORT_SIDE = 1080
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
        playback: PlaybackOptions,
        old_bytes_grace_seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.storage = storage
        self.tools = tools
        self.media_facts = media_facts
        self.worker = worker
        self.playback = playback
        # Encoding (a transcode, a ladder) takes every core it can: one at a time per process.
        self._encoding = asyncio.Semaphore(1)
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
        except DataError as exc:  # a value the catalog's column cannot hold
            logger.warning("job %s: %r", job.id, exc)
            state, error = "failed", "the catalog could not store what processing found"
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
                raise Skip(str(exc)) from None
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
        plan = plan_playback(probe) if kind in ("video", "audio") else None
        await self._update_media(media.id, **_probe_columns(probe, plan))

        if kind == "video" and probe.has_video:
            await progress("poster", 0.05)
            await self._pictures(media, source, container, poster_time(probe.duration))
        elif probe.has_cover:
            await progress("poster", 0.05)
            await self._cover(media, source, container)
        elif kind == "image":
            await progress("poster", 0.05)
            facts = await self.tools.picture_facts(source, container)
            await self._update_media(media.id, camera=facts.camera, taken_at=facts.taken_at)
            await self._pictures(media, source, container, None, poster_width=IMAGE_VIEW_WIDTH)

        copy = plan is not None and self.playback.makes_copy(plan)
        rungs: tuple[Rung, ...] = ()
        if kind == "video" and probe.has_video:
            rungs = ladder_for(
                self.playback.hls_heights,
                short_side(probe.width, probe.height),
                probe.bitrate,
                self.playback.hls_min_bitrate,
            )
        progress.expect(int(copy) + int(bool(rungs)))
        if copy:
            assert plan is not None
            await self._playable_copy(media, source, container, probe, plan, progress,
                                      extend_deadline)  # fmt: skip
        if rungs:
            async with self._encoding:
                # Counted from here: waiting for the encoder is no part of this job's time.
                extend_deadline(
                    self.tools.limits.transcode_seconds(probe.duration, media.size) * len(rungs)
                )
                await self._renditions(media, source, container, probe, rungs, progress)

    async def _pictures(
        self,
        media: Media,
        source: Path,
        container: Container,
        at: float | None,
        poster_width: int = POSTER_WIDTH,
        cover: bool = False,
    ) -> None:
        """The poster (for images: the scaled copy the page shows) and the thumbnail."""
        poster = await self._frame(source, container, at, poster_width, cover)
        thumbnail = await self._frame(source, container, at, THUMBNAIL_WIDTH, cover)
        await self._update_media(
            media.id, replaced_keys=(media.poster_key, media.thumbnail_key),
            poster_key=poster, thumbnail_key=thumbnail,
        )  # fmt: skip

    async def _cover(self, media: Media, source: Path, container: Container) -> None:
        """An audio file's cover art as its poster and thumbnail. A cover that cannot be
        read (too many pixels, broken) costs the media its picture, nothing else."""
        try:
            await self._pictures(media, source, container, None, cover=True)
        except ToolFailed as exc:
            logger.info("media %s: cover art not used: %s", media.id, exc)

    async def _frame(
        self, source: Path, container: Container, at: float | None, width: int, cover: bool
    ) -> str:
        """A poster or thumbnail from ``at`` seconds in; never an empty file."""

        async def produce(target: Path) -> None:
            await self.tools.extract_frame(source, container, target, at, width, cover=cover)
            if await _size(target) == 0 and at:
                # ffmpeg exits 0 having written nothing when no frame follows ``at`` (a
                # video track shorter than the audio the duration comes from): try the start.
                await self.tools.extract_frame(source, container, target, 0.0, width)
            if await _size(target) == 0:
                raise ToolFailed("ffmpeg could not make a picture of it (no frame decoded)")

        return await self._derive(produce)

    async def _playable_copy(
        self,
        media: Media,
        source: Path,
        container: Container,
        probe: ProbeResult,
        plan: PlaybackPlan,
        progress: "_Reporter",
        extend_deadline: ExtendDeadline,
    ) -> None:
        """The remuxed or transcoded MP4 browsers play, and its codecs."""
        report = progress.stage(plan.plan)
        await report(0.0)
        # The copy may take what is free above the disk's reserve, and not a byte more.
        room = await anyio.to_thread.run_sync(self.storage.free_space.room)
        if room < _MIN_TRANSCODE_ROOM_BYTES:
            raise ToolFailed("not enough free disk space to make a playable copy")

        codecs: str | None = None

        async def produce(target: Path) -> None:
            nonlocal codecs
            if plan.plan == "remux":
                await self.tools.remux_mp4(
                    source, container, target, duration=probe.duration, size=media.size,
                    encode_audio=plan.encode_audio, hevc=probe.video_codec == "hevc",
                    on_progress=report, max_file_bytes=room,
                )  # fmt: skip
            else:
                await self.tools.transcode_h264(
                    source, container, target, probe.duration, media.size, report, room,
                    scale=_transcode_scale(probe),
                )  # fmt: skip
            # Probed here, while the copy is a local file (on S3 it is not, once stored).
            codecs = codecs_parameter(await self.tools.probe(target, MP4_CONTAINER))

        if plan.plan == "remux":
            extend_deadline(self.tools.limits.remux_seconds(media.size))
            key = await self._derive(produce)
        else:
            async with self._encoding:
                extend_deadline(self.tools.limits.transcode_seconds(probe.duration, media.size))
                key = await self._derive(produce)
        await self._update_media(
            media.id, replaced_keys=(media.playback_key,), playback_key=key,
            playback_codecs=codecs,
        )  # fmt: skip

    async def _renditions(
        self,
        media: Media,
        source: Path,
        container: Container,
        probe: ProbeResult,
        rungs: tuple[Rung, ...],
        progress: "_Reporter",
    ) -> None:
        """The HLS ladder in one ffmpeg run, each rendition stored as one file, with its
        playlist in the catalog."""
        report = progress.stage("renditions " + "+".join(f"{r.height}p" for r in rungs))
        await report(0.0)
        room = await anyio.to_thread.run_sync(self.storage.free_space.room)
        if room < _MIN_TRANSCODE_ROOM_BYTES:
            raise ToolFailed("not enough free disk space to make the renditions")
        scratch = self.storage.scratch
        files = LadderFiles(scratch.directory, secrets.token_hex(12))
        count = len(rungs)
        outputs = [await scratch.open_partial(token=files.token("r", i)) for i in range(count)]
        texts = [await scratch.open_partial(token=files.token("p", i)) for i in range(count)]
        texts.append(await scratch.open_partial(token=files.token("m")))
        stored: list[str] = []
        catalogued = False
        try:
            # Each output file is bounded; together they stay within the room.
            await self.tools.encode_ladder(
                source, container, files, rungs, _portrait(probe),
                probe.audio_codec is not None, probe.duration, media.size, report,
                room // count,
            )  # fmt: skip
            renditions = await _read_renditions(outputs, texts)
            for rendition, output in zip(renditions, outputs, strict=True):
                rendition.storage_key = await self.storage.store_scratch(output)
                stored.append(rendition.storage_key)
            async with self.sessionmaker() as session:
                old = await replace_renditions(session, media.id, renditions)
                await session.commit()
                catalogued = old is not None
            if old is None:
                raise JobLost()
        except BaseException:
            if not catalogued:
                await _delete_all(self.storage, stored)
            raise
        finally:
            for partial in outputs + texts:
                await partial.discard()  # those stored are gone from scratch already
        self.media_facts.forget(media.id)
        for key in old:
            self._delete_later(key)

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
        self._stages = 1
        self._stages_begun = 0

    def expect(self, stages: int) -> None:
        """Say how many long steps the job has: each gets an equal share of 15–95 %."""
        self._stages = max(1, stages)

    def stage(self, step: str) -> Callable[[float], Awaitable[None]]:
        """A callback reporting the fraction done of the next long ``step`` (ffmpeg's
        progress), mapped onto its share of the job."""
        share = 0.8 / self._stages
        start = 0.15 + share * min(self._stages_begun, self._stages - 1)
        self._stages_begun += 1

        async def report(fraction: float) -> None:
            await self(step, start + share * fraction)

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


def _portrait(probe: ProbeResult) -> bool:
    return bool(probe.width and probe.height and probe.height > probe.width)


def _transcode_scale(probe: ProbeResult) -> str | None:
    """The scale filter that brings a copy down to 1080p, if the original is larger."""
    short = short_side(probe.width, probe.height)
    if short is None or short <= TRANSCODE_MAX_SHORT_SIDE:
        return None
    return scale_to(TRANSCODE_MAX_SHORT_SIDE, _portrait(probe))


def _probe_columns(probe: ProbeResult, plan: PlaybackPlan | None) -> dict[str, object]:
    return {
        "duration": probe.duration,
        "width": probe.width,
        "height": probe.height,
        "video_codec": probe.video_codec,
        "audio_codec": probe.audio_codec,
        "bitrate": probe.bitrate,
        "container": probe.container,
        "codecs": codecs_parameter(probe),
        "playable": None if plan is None else plan.plan == "original",
        "playback_plan": None if plan is None else plan.plan,
        "playback_reason": None if plan is None else plan.reason,
        "tag_title": probe.tag_title,
        "tag_artist": probe.tag_artist,
        "tag_album": probe.tag_album,
    }


async def _read_renditions(outputs: list[PartialFile], texts: list[PartialFile]) -> list[Rendition]:
    """The renditions ffmpeg wrote: facts from its master playlist (last of ``texts``), the
    segments from each media playlist, checked against the file they index."""
    try:
        facts = master_variant_facts(await _read_playlist(texts[-1].path))
        if len(facts) != len(outputs):
            raise PlaylistError("a master playlist of other renditions than asked for")
        renditions = []
        for (width, height, codecs), output, text in zip(facts, outputs, texts, strict=False):
            playlist = parse_media_playlist(
                await _read_playlist(text.path), await _size(output.path)
            )
            renditions.append(
                Rendition(
                    width=width, height=height, codecs=codecs,
                    bandwidth=playlist.peak_bandwidth(),
                    average_bandwidth=playlist.average_bandwidth(),
                    playlist=playlist.template(), storage_key="",
                )
            )  # fmt: skip
    except PlaylistError as exc:
        raise ToolFailed(f"ffmpeg's HLS output could not be read: {exc}") from None
    return renditions


async def _read_playlist(path: Path) -> str:
    async with open_for_reading(path) as handle:
        data = await handle.read(MAX_PLAYLIST_BYTES + 1)
    if len(data) > MAX_PLAYLIST_BYTES:
        raise PlaylistError("a playlist far longer than any video needs")
    return data.decode("utf-8", errors="replace")


async def _delete_all(storage: Storage, keys: list[str]) -> None:
    with anyio.CancelScope(shield=True):
        for key in keys:
            await storage.delete(key)


async def _read_head(path: Path) -> bytes:
    async with open_for_reading(path) as handle:
        return await handle.read(_HEAD_BYTES)


async def _size(path: Path) -> int:
    return (await anyio.Path(path).stat()).st_size
