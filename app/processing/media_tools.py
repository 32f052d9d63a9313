"""ffprobe and ffmpeg as bounded asyncio subprocesses: probe, grab a frame, transcode.

Every run reads its input only through the demuxer the allow-list chose
(``app.processing.containers``), from the local file only; has a wall-clock limit, an
address-space limit and a pixel limit; keeps at most a bounded amount of what the tool prints;
and can be cancelled: the subprocess is killed and reaped, never left behind. Error messages
never carry the server's paths.
"""

import asyncio
import ctypes
import logging
import os
import resource
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from app.processing.containers import Container, input_arguments
from app.processing.ladder import Rung, scale_to
from app.processing.limits import ProcessingLimits
from app.processing.probe import (
    PictureFacts,
    ProbeResult,
    describe_tool_failure,
    parse_ffprobe,
    parse_picture_facts,
    pixel_limit_refusal,
    progress_from_ffmpeg,
    too_many_pixels,
)
from app.storage.scratch import PARTIAL_SUFFIX

logger = logging.getLogger("streamport.processing")

ProgressCallback = Callable[[float], Awaitable[None]]
HLS_SEGMENT_SECONDS = 4
_STDERR_TAIL_BYTES = 8192
# ffprobe's JSON for a real file is a few KiB; a file of ten thousand streams is not media.
_MAX_PROBE_OUTPUT_BYTES = 4 * 2**20
_PR_SET_PDEATHSIG = 1
_CHILD_NICENESS = 19
# A poster is a JPEG of at most 1280 pixels across: far below this.
_MAX_FRAME_FILE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class LadderFiles:
    """The scratch files one HLS run writes, named ``<base><kind><variant>.part``: ``r`` the
    rendition files, ``p`` their media playlists, ``m`` the master playlist (no variant)."""

    directory: Path
    base: str

    def token(self, kind: str, variant: int | str = "") -> str:
        return f"{self.base}{kind}{variant}"

    def path(self, kind: str, variant: int | str = "") -> Path:
        return self.directory / f"{self.token(kind, variant)}{PARTIAL_SUFFIX}"


class ToolFailed(Exception):
    """ffmpeg or ffprobe failed; the message says why, without paths."""


class ToolTimedOut(ToolFailed):
    """A run took longer than its limit and was killed."""


class ImageTooLarge(ToolFailed):
    """The picture has more pixels than the limit; nothing was decoded."""


@dataclass(frozen=True)
class MediaTools:
    """Where ffmpeg and ffprobe are, if they are installed, and the limits they run under."""

    ffmpeg: str | None
    ffprobe: str | None
    limits: ProcessingLimits

    @classmethod
    def locate(
        cls, limits: ProcessingLimits, ffmpeg: str = "ffmpeg", ffprobe: str = "ffprobe"
    ) -> "MediaTools":
        """Find both programs on PATH (or at the given paths)."""
        return cls(shutil.which(ffmpeg), shutil.which(ffprobe), limits)

    @property
    def available(self) -> bool:
        return self.ffmpeg is not None and self.ffprobe is not None

    def _input(self, container: Container, path: Path) -> list[str]:
        # -max_pixels makes every decoder refuse larger pictures before allocating them.
        return ["-max_pixels", str(self.limits.max_pixels), *input_arguments(container, str(path))]

    async def probe(self, path: Path, container: Container) -> ProbeResult:
        """Duration, size, codecs and container of a file."""
        assert self.ffprobe is not None
        output = await self._run(
            [self.ffprobe, "-v", "warning", "-print_format", "json", "-show_format",
             "-show_streams", *self._input(container, path)],
            self.limits.probe_seconds,
            max_output_bytes=_MAX_PROBE_OUTPUT_BYTES,
            # An audio or video file may carry an oversized cover, which costs it the cover
            # alone (see ``extract_frame``): only its video stream is judged, below.
            refuse_large_pictures=container.is_image,
        )  # fmt: skip
        probe = parse_ffprobe(output.decode("utf-8", errors="replace"))
        if probe.width and probe.height and probe.width * probe.height > self.limits.max_pixels:
            raise ImageTooLarge(too_many_pixels(probe.width, probe.height, self.limits.max_pixels))
        return probe

    async def picture_facts(self, path: Path, container: Container) -> PictureFacts:
        """Camera and time taken from a picture's EXIF, which ffmpeg's JPEG decoder reads
        into the first frame's tags (so a hostile EXIF block is parsed in a bounded child,
        never in the server)."""
        assert self.ffprobe is not None
        output = await self._run(
            [self.ffprobe, "-v", "warning", "-print_format", "json", "-select_streams", "v:0",
             "-show_frames", "-read_intervals", "%+#1", *self._input(container, path)],
            self.limits.probe_seconds,
            max_output_bytes=_MAX_PROBE_OUTPUT_BYTES,
        )  # fmt: skip
        return parse_picture_facts(output.decode("utf-8", errors="replace"))

    async def extract_frame(
        self,
        source: Path,
        container: Container,
        target: Path,
        at: float | None,
        max_width: int,
        *,
        cover: bool = False,
    ) -> None:
        """A JPEG of the most representative of a few frames from ``at`` seconds on (None: the
        first picture, as for cover art, which a seek would skip); of the video stream, or with
        ``cover`` of the attached picture (never the one for the other)."""
        assert self.ffmpeg is not None
        scale = f"scale='min({max_width},iw)':-2"
        seek = [] if container.is_image or at is None else ["-ss", f"{at:.3f}"]
        # 0:V is video proper, attached pictures excluded; ffmpeg's own choice would be the
        # largest picture, which may be an oversized cover rather than the video.
        stream = "0:v:0" if cover or container.is_image else "0:V:0"
        await self._run(
            [self.ffmpeg, "-nostdin", "-v", "warning", "-y", *seek, *self._input(container, source),
             "-map", stream, "-vf", f"thumbnail=12,{scale}", "-frames:v", "1", "-q:v", "3",
             "-f", "image2",
             "-c:v", "mjpeg", f"file:{target}"],
            self.limits.frame_seconds,
            max_file_bytes=_MAX_FRAME_FILE_BYTES,
        )  # fmt: skip

    async def remux_mp4(
        self,
        source: Path,
        container: Container,
        target: Path,
        *,
        duration: float | None,
        size: int,
        encode_audio: bool,
        hevc: bool,
        on_progress: ProgressCallback,
        max_file_bytes: int,
    ) -> None:
        """The same video (and audio, unless it must become AAC) in a faststart MP4: no
        decoding, no loss, about as fast as the disk."""
        assert self.ffmpeg is not None
        audio = ["-c:a", "aac", "-b:a", "160k"] if encode_audio else ["-c:a", "copy"]
        # Safari plays HEVC in MP4 only under the hvc1 tag.
        tag = ["-tag:v", "hvc1"] if hevc else []
        await self._run(
            [self.ffmpeg, "-nostdin", "-v", "warning", "-y", *self._input(container, source),
             "-map", "0:V:0?", "-map", "0:a:0?", "-c:v", "copy", *tag, *audio,
             "-movflags", "+faststart", "-f", "mp4", "-progress", "pipe:1", "-nostats",
             f"file:{target}"],
            self.limits.remux_seconds(size),
            progress=(duration, on_progress),
            max_file_bytes=max_file_bytes,
        )  # fmt: skip

    async def transcode_h264(
        self,
        source: Path,
        container: Container,
        target: Path,
        duration: float | None,
        size: int,
        on_progress: ProgressCallback,
        max_file_bytes: int,
        scale: str | None = None,
    ) -> None:
        """An H.264/AAC MP4 that every browser plays (AAC in MP4 alone for audio files),
        index first, of at most ``max_file_bytes`` (the room left above the disk's reserve);
        ``scale``, a filter that makes the picture smaller."""
        assert self.ffmpeg is not None
        resize = ["-vf", scale] if scale else []
        await self._run(
            [self.ffmpeg, "-nostdin", "-v", "warning", "-y", *self._input(container, source),
             # vfr: timestamps kept as they are, never gaps filled with copies of frames
             # (a file with frames a day apart would make a billion).
             "-map", "0:V:0?", "-map", "0:a:0?", "-fps_mode", "vfr", *resize,
             "-c:v", "libx264", "-preset", "veryfast",
             "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "160k",
             "-movflags", "+faststart", "-f", "mp4", "-progress", "pipe:1", "-nostats",
             f"file:{target}"],
            self.limits.transcode_seconds(duration, size),
            progress=(duration, on_progress),
            max_file_bytes=max_file_bytes,
        )  # fmt: skip

    async def encode_ladder(
        self,
        source: Path,
        container: Container,
        outputs: LadderFiles,
        rungs: Sequence[Rung],
        portrait: bool,
        has_audio: bool,
        duration: float | None,
        size: int,
        on_progress: ProgressCallback,
        max_file_bytes: int,
    ) -> None:
        """Every rung of an HLS ladder in one run: the source is decoded once, split and
        scaled; each rendition is one fragmented MP4 with aligned 4-second segments (a
        key frame forced at each boundary, none at scene cuts) and its media playlist."""
        assert self.ffmpeg is not None
        count = len(rungs)
        chains = ";".join(
            f"[s{i}]{scale_to(rung.height, portrait)},format=yuv420p[v{i}]"
            for i, rung in enumerate(rungs)
        )
        graph = f"[0:V:0]split={count}{''.join(f'[s{i}]' for i in range(count))};{chains}"
        maps: list[str] = []
        rates: list[str] = []
        for i, rung in enumerate(rungs):
            maps += ["-map", f"[v{i}]"]
            rates += [f"-maxrate:v:{i}", str(rung.video_bits), f"-bufsize:v:{i}",
                      str(2 * rung.video_bits)]  # fmt: skip
        if has_audio:
            maps += ["-map", "0:a:0"] * count
        streams = " ".join(f"v:{i},a:{i}" if has_audio else f"v:{i}" for i in range(count))
        await self._run(
            [self.ffmpeg, "-nostdin", "-v", "warning", "-y", *self._input(container, source),
             "-filter_complex", graph, *maps, "-fps_mode", "vfr",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", *rates,
             "-force_key_frames", f"expr:gte(t,n_forced*{HLS_SEGMENT_SECONDS})",
             "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
             "-f", "hls", "-hls_time", str(HLS_SEGMENT_SECONDS), "-hls_playlist_type", "vod",
             "-hls_segment_type", "fmp4", "-hls_flags", "single_file+independent_segments",
             "-var_stream_map", streams,
             "-hls_segment_filename", f"file:{outputs.path('r', '%v')}",
             "-master_pl_name", outputs.path("m").name,
             "-progress", "pipe:1", "-nostats", f"file:{outputs.path('p', '%v')}"],
            self.limits.transcode_seconds(duration, size) * count,
            progress=(duration, on_progress),
            max_file_bytes=max_file_bytes,
        )  # fmt: skip

    async def _run(
        self,
        argv: Sequence[str],
        seconds: float,
        *,
        max_output_bytes: int = 0,
        max_file_bytes: int | None = None,
        progress: tuple[float | None, ProgressCallback] | None = None,
        refuse_large_pictures: bool = True,
    ) -> bytes:
        """Run one tool to its end within ``seconds``; its standard output (at most
        ``max_output_bytes``, or progress lines handed to ``progress``)."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_child_environment(),
            preexec_fn=lambda: _prepare_child(self.limits.memory_bytes, max_file_bytes),
        )
        assert process.stdout is not None and process.stderr is not None
        stderr = _StderrTail()
        stderr_task = asyncio.ensure_future(stderr.drain(process.stderr))
        try:
            async with asyncio.timeout(seconds):
                if progress is None:
                    output = await _read_bounded(process.stdout, max_output_bytes)
                else:
                    output = b""
                    await _follow_progress(process.stdout, *progress)
                await stderr_task
                await process.wait()
        except TimeoutError:
            await _kill(process, stderr_task)
            raise ToolTimedOut(
                f"{Path(argv[0]).name} took longer than its limit of {seconds:.0f} s"
            ) from None
        except BaseException:
            await _kill(process, stderr_task)
            raise
        refusal = pixel_limit_refusal(stderr.tail, self.limits.max_pixels)
        # A tool that failed over a picture's size was refused, whatever the picture.
        if refusal is not None and (refuse_large_pictures or process.returncode != 0):
            raise ImageTooLarge(refusal)
        if process.returncode != 0:
            # The whole story, paths included, for the operator; the media page gets less.
            logger.warning(
                "%s exited with %s: %s", Path(argv[0]).name, process.returncode, stderr.tail[-1000:]
            )
            raise ToolFailed(
                describe_tool_failure(
                    Path(argv[0]).name,
                    stderr.tail,
                    process.returncode,
                    self.limits.memory_bytes,
                )
            )
        return output


class _StderrTail:
    """What a tool says on standard error, of which only the end is kept."""

    def __init__(self) -> None:
        self._kept = bytearray()

    @property
    def tail(self) -> str:
        return self._kept.decode("utf-8", errors="replace")

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self._kept += chunk
            del self._kept[:-_STDERR_TAIL_BYTES]


async def _read_bounded(stream: asyncio.StreamReader, max_bytes: int) -> bytes:
    data = bytearray()
    while chunk := await stream.read(65536):
        data += chunk
        if len(data) > max_bytes:
            raise ToolFailed("ffprobe said far more about this file than any media file needs")
    return bytes(data)


async def _follow_progress(
    stream: asyncio.StreamReader, duration: float | None, on_progress: ProgressCallback
) -> None:
    while True:
        try:
            raw_line = await stream.readline()
        except ValueError:  # a line over the reader's limit: not ffmpeg's progress format
            raise ToolFailed("ffmpeg's progress could not be read") from None
        if not raw_line:
            return
        fraction = progress_from_ffmpeg(raw_line.decode("ascii", errors="replace"), duration)
        if fraction is not None:
            await on_progress(fraction)


def _child_environment() -> dict[str, str]:
    # Few malloc arenas: each thread's arena reserves 64 MiB of address space, which the
    # address-space limit counts although little of it is ever used.
    return {**os.environ, "MALLOC_ARENA_MAX": "2"}


def _prepare_child(memory_bytes: int, max_file_bytes: int | None) -> None:
    """In the child, before exec: bound its memory (and for posters, its output), yield the
    CPU to the server, whose requests come first (at normal priority two transcodes cut its
    throughput to a fifth), and be killed if the server dies (a kill -9 runs no cleanup)
    instead of writing on into an unused partial."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if max_file_bytes is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    os.nice(_CHILD_NICENESS)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


async def _kill(process: asyncio.subprocess.Process, stderr_task: asyncio.Future[None]) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.wait()
        stderr_task.cancel()
        await asyncio.gather(stderr_task, return_exceptions=True)
