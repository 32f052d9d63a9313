"""Test media made with ffmpeg at test time (nothing is checked in)."""

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"


@dataclass(frozen=True)
class Samples:
    """Paths of the generated media."""

    mp4_moov_at_end: Path
    mp4_faststart: Path
    webm: Path
    mp3: Path
    png: Path
    random_file: Path

    VIDEO_SECONDS = 30.0


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _ffmpeg_started(*args: str) -> subprocess.Popen[bytes]:
    """``_ffmpeg`` in the background: finish it with ``_finished``."""
    return subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args])


def _finished(process: subprocess.Popen[bytes]) -> None:
    if process.wait() != 0:
        raise subprocess.CalledProcessError(process.returncode, process.args)


def make_samples(directory: Path, random_mib: int = 300) -> Samples:
    """Generate every sample into ``directory``. The encodes run side by side (libvpx and the
    small ones use one core each, x264 no more than it gets), and the random file is written
    meanwhile; each file is what it would be made one after the other."""
    directory.mkdir(parents=True, exist_ok=True)
    seconds = str(Samples.VIDEO_SECONDS)
    mp4 = directory / "camera clip.mp4"
    webm = directory / "drone flight.webm"
    mp3 = directory / "field recording.mp3"
    png = directory / "mandelbrot.png"
    random_file = directory / "backup.tar.zst"

    def write_random() -> None:
        with random_file.open("wb") as out:
            for _ in range(random_mib):
                out.write(os.urandom(2**20))

    writer = threading.Thread(target=write_random)
    writer.start()
    started = [
        _ffmpeg_started(
            "-f", "lavfi", "-i", f"testsrc=size=640x360:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds}",
            "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
            "-g", "50", "-c:a", "libopus", "-shortest", str(webm),
        ),
        _ffmpeg_started(
            "-f", "lavfi", "-i", "sine=frequency=220:duration=8", "-c:a", "libmp3lame", str(mp3)
        ),
        _ffmpeg_started("-f", "lavfi", "-i", "mandelbrot=size=640x480", "-frames:v", "1", str(png)),
    ]  # fmt: skip
    try:
        # A plain mp4 muxer run leaves the moov atom at the end, as cameras and many encoders do.
        _ffmpeg(
            "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50",
            "-c:a", "aac", "-b:a", "96k", "-shortest", str(mp4),
        )  # fmt: skip
        faststart = directory / "web clip.mp4"
        _ffmpeg("-i", str(mp4), "-c", "copy", "-movflags", "+faststart", str(faststart))
    finally:
        for process in started:
            _finished(process)
        writer.join()
    return Samples(mp4, faststart, webm, mp3, png, random_file)


def moov_before_mdat(path: Path) -> bool:
    """Whether an MP4's moov atom precedes its mdat (faststart)."""
    with path.open("rb") as handle:
        while header := handle.read(8):
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8]
            if kind in (b"moov", b"mdat"):
                return kind == b"moov"
            if size == 1:
                size = int.from_bytes(handle.read(8), "big") - 8
            handle.seek(size - 8, os.SEEK_CUR)
    raise ValueError(f"{path} has neither moov nor mdat")


def probe_duration(source: str) -> float:
    """Duration in seconds, as ffprobe reads it from a path or URL."""
    result = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", source],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return float(result.stdout.strip())


# Where ``make_hevc_mkv`` keeps what it made, for the session (set by tests/conftest.py).
hevc_cache: Path | None = None
# Longer clips are this one repeated: the encode of a 60 s clip took 16 s of CPU.
_HEVC_PIECE_SECONDS = 30.0


def make_hevc_mkv(path: Path, seconds: float = 20.0) -> Path:
    """HEVC video with AAC audio in Matroska: a format browsers do not play. Each length is
    encoded once a session and copied to ``path``; a multiple of 30 s longer than that is the
    30 s clip joined to itself (a stream copy, timestamps running on)."""
    if hevc_cache is None:
        return _encode_hevc_mkv(path, seconds)
    shutil.copyfile(_cached_hevc_mkv(hevc_cache, seconds), path)
    return path


def _cached_hevc_mkv(cache: Path, seconds: float) -> Path:
    cached = cache / f"hevc-{seconds:g}s.mkv"
    if not cached.exists():
        partial = cache / f"hevc-{seconds:g}s.part.mkv"
        pieces, rest = divmod(seconds, _HEVC_PIECE_SECONDS)
        if pieces > 1 and rest == 0:
            piece = _cached_hevc_mkv(cache, _HEVC_PIECE_SECONDS)
            listing = cache / f"hevc-{seconds:g}s.txt"
            listing.write_text(f"file '{piece}'\n" * int(pieces))
            _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(partial))
        else:
            _encode_hevc_mkv(partial, seconds)
        partial.rename(cached)
    return cached


def _encode_hevc_mkv(path: Path, seconds: float) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=500:duration={seconds}",
        "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


def truncate(source: Path, target: Path, fraction: float) -> Path:
    """The first ``fraction`` of a file: a broken upload."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target
