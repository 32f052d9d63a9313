"""ffprobe and ffmpeg as asyncio subprocesses: probe, grab a frame, remux, transcode.

Every run can be cancelled: the subprocess is killed and reaped, never left behind.
"""

import asyncio
import ctypes
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from app.processing.probe import ProbeResult, parse_ffprobe, progress_from_ffmpeg

ProgressCallback = Callable[[float], Awaitable[None]]
_STDERR_TAIL_BYTES = 2000
_PR_SET_PDEATHSIG = 1
_CHILD_NICENESS = 19


class ToolFailed(Exception):
    """ffmpeg or ffprobe exited with an error; the message is the end of what it said."""


@dataclass(frozen=True)
class MediaTools:
    """Where ffmpeg and ffprobe are, if they are installed."""

    ffmpeg: str | None
    ffprobe: str | None

    @classmethod
    def locate(cls, ffmpeg: str = "ffmpeg", ffprobe: str = "ffprobe") -> "MediaTools":
        """Find both programs on PATH (or at the given paths)."""
        return cls(shutil.which(ffmpeg), shutil.which(ffprobe))

    @property
    def available(self) -> bool:
        return self.ffmpeg is not None and self.ffprobe is not None

    async def probe(self, path: Path) -> ProbeResult:
        """Duration, size, codecs and container of a file."""
        assert self.ffprobe is not None
        output = await _run(
            [self.ffprobe, "-v", "error", "-print_format", "json", "-show_format",
             "-show_streams", str(path)],
        )  # fmt: skip
        return parse_ffprobe(output.decode("utf-8", errors="replace"))

    async def extract_frame(self, source: Path, target: Path, at: float, max_width: int) -> None:
        """A JPEG of the most representative of a few frames from ``at`` seconds on."""
        assert self.ffmpeg is not None
        scale = f"scale='min({max_width},iw)':-2"
        await _run(
            [self.ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", f"{at:.3f}", "-i", str(source),
             "-vf", f"thumbnail=12,{scale}", "-frames:v", "1", "-q:v", "3", "-f", "image2",
             "-c:v", "mjpeg", str(target)],
        )  # fmt: skip

    async def remux_faststart(
        self, source: Path, target: Path, duration: float | None, on_progress: ProgressCallback
    ) -> None:
        """Copy every stream unchanged into an MP4 whose index comes first."""
        assert self.ffmpeg is not None
        await _run_with_progress(
            [self.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0",
             "-c", "copy", "-movflags", "+faststart", "-f", "mp4", "-progress", "pipe:1",
             "-nostats", str(target)],
            duration,
            on_progress,
        )  # fmt: skip

    async def transcode_h264(
        self, source: Path, target: Path, duration: float | None, on_progress: ProgressCallback
    ) -> None:
        """An H.264/AAC MP4 that every browser plays, index first."""
        assert self.ffmpeg is not None
        await _run_with_progress(
            [self.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source),
             "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast",
             "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "160k",
             "-movflags", "+faststart", "-f", "mp4", "-progress", "pipe:1", "-nostats",
             str(target)],
            duration,
            on_progress,
        )  # fmt: skip


def _prepare_child() -> None:
    """In the child, before exec: yield the CPU to the server, whose requests come first
    (at normal priority two transcodes cut its throughput to a fifth), and be killed if the
    server dies (a kill -9 runs no cleanup) instead of writing on into an unused partial."""
    os.nice(_CHILD_NICENESS)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn_options() -> dict[str, object]:
    return {"preexec_fn": _prepare_child}


async def _run(argv: Sequence[str]) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **_spawn_options(),  # type: ignore[arg-type]
    )
    try:
        stdout, stderr = await process.communicate()
    except BaseException:
        await _kill(process)
        raise
    if process.returncode != 0:
        raise ToolFailed(_describe_failure(argv[0], stderr))
    return stdout


async def _run_with_progress(
    argv: Sequence[str], duration: float | None, on_progress: ProgressCallback
) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **_spawn_options(),  # type: ignore[arg-type]
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_task = asyncio.ensure_future(process.stderr.read())
    try:
        async for raw_line in process.stdout:
            fraction = progress_from_ffmpeg(raw_line.decode("ascii", errors="replace"), duration)
            if fraction is not None:
                await on_progress(fraction)
        stderr = await stderr_task
        await process.wait()
    except BaseException:
        stderr_task.cancel()
        await _kill(process)
        raise
    if process.returncode != 0:
        raise ToolFailed(_describe_failure(argv[0], stderr))


async def _kill(process: asyncio.subprocess.Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.wait()


def _describe_failure(program: str, stderr: bytes) -> str:
    tail = stderr[-_STDERR_TAIL_BYTES:].decode("utf-8", errors="replace").strip()
    lines = [line for line in tail.splitlines() if line.strip()]
    name = Path(program).name
    return f"{name}: {lines[-1]}" if lines else f"{name} failed"
