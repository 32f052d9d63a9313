"""What ffprobe says about a file, and whether browsers can play it. Pure functions."""

import json
import re
import signal
from typing import Any, NamedTuple


class ProbeResult(NamedTuple):
    """The facts the catalog keeps about a media file."""

    duration: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    bitrate: int | None
    container: str | None

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None


# Streams ffprobe lists as video although they are cover art, not motion pictures.
_STILL_CODECS = {"mjpeg", "png", "bmp", "gif", "webp"}


def parse_ffprobe(output: str) -> ProbeResult:
    """Read ``ffprobe -print_format json -show_format -show_streams`` output."""
    data: dict[str, Any] = json.loads(output)
    streams: list[dict[str, Any]] = data.get("streams") or []
    fmt: dict[str, Any] = data.get("format") or {}
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    return ProbeResult(
        duration=_positive_float(fmt.get("duration"))
        or _positive_float((video or {}).get("duration")),
        width=_positive_int((video or {}).get("width")),
        height=_positive_int((video or {}).get("height")),
        video_codec=(video or {}).get("codec_name"),
        audio_codec=(audio or {}).get("codec_name"),
        bitrate=_positive_int(fmt.get("bit_rate")),
        container=fmt.get("format_name"),
    )


def _positive_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


# What current Chromium, Firefox and Safari all play in <video>/<audio>.
_PLAYABLE_VIDEO = {"h264", "vp8", "vp9", "av1"}
_PLAYABLE_AUDIO = {"aac", "mp3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_f32le"}
_PLAYABLE_CONTAINERS = ("mp4", "mov", "webm", "ogg", "mp3", "wav", "flac", "aac")


def browser_playable(probe: ProbeResult) -> bool:
    """Whether browsers play this file as it is.

    Matroska is refused even with playable codecs: only its WebM subset plays everywhere, and
    ffprobe names both "matroska,webm".
    """
    container = probe.container or ""
    names = set(container.split(","))
    if not names & set(_PLAYABLE_CONTAINERS):
        return False
    if "matroska" in names and not (
        probe.video_codec in (None, "vp8", "vp9", "av1")
        and probe.audio_codec in (None, "opus", "vorbis")
    ):
        return False
    if probe.video_codec is not None and probe.video_codec not in _PLAYABLE_VIDEO:
        return False
    if probe.audio_codec is not None and probe.audio_codec not in _PLAYABLE_AUDIO:
        return False
    return probe.video_codec is not None or probe.audio_codec is not None


def poster_time(duration: float | None) -> float:
    """Where to take a poster: about 10 % in, past the black first frames of most videos."""
    if not duration:
        return 0.0
    return max(0.0, min(duration * 0.1, duration - 0.1))


def progress_from_ffmpeg(line: str, duration: float | None) -> float | None:
    """The fraction done from one line of ``ffmpeg -progress`` output, if it tells one."""
    key, _, value = line.strip().partition("=")
    if key == "progress" and value == "end":
        return 1.0
    if key not in ("out_time_us", "out_time_ms") or not duration:
        return None
    try:
        microseconds = int(value)
    except ValueError:
        return None  # "N/A" before the first frame
    return max(0.0, min(1.0, microseconds / 1_000_000 / duration))


_PIXEL_LIMIT = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count")
# Anything that looks like a path on the server: absolute, or a file: URL.
_PATH = re.compile(r"(?:file:)?/[^\s'\":]*")
# "[mov,mp4,m4a @ 0x55d0...]" prefixes: internal addresses, of no use to anyone reading.
_CONTEXT_PREFIX = re.compile(r"\[[^\]]*@ 0x[0-9a-f]+\]\s*")
_MEMORY_HINTS = ("Cannot allocate memory", "malloc of size", "Out of memory", "std::bad_alloc")


def pixel_limit_refusal(stderr: str, max_pixels: int) -> str | None:
    """A readable reason if a decoder refused a picture for having too many pixels."""
    found = _PIXEL_LIMIT.search(stderr)
    if found is None:
        return None
    width, height = int(found.group(1)), int(found.group(2))
    return (
        f"the picture is {width:,}×{height:,} pixels, more than the limit of "
        f"{max_pixels / 1e6:g} megapixels"
    )


def scrub_paths(text: str) -> str:
    """``text`` without the server's paths (they are logged, never shown)."""
    return _PATH.sub("the file", _CONTEXT_PREFIX.sub("", text))


def describe_tool_failure(program: str, stderr: str, returncode: int, memory_bytes: int) -> str:
    """Why a tool failed, for the media page: its last line, or its fate, without paths."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any(hint in stderr for hint in _MEMORY_HINTS) or returncode in (
        -signal.SIGKILL,
        -signal.SIGSEGV,
        -signal.SIGABRT,
    ):
        return f"{program} needed more than its memory limit of {memory_bytes / 2**20:,.0f} MiB"
    if returncode == -signal.SIGXFSZ:
        return f"{program} would have written into the disk space kept free"
    if lines:
        return f"{program}: {scrub_paths(lines[-1])}"
    if returncode < 0:
        return f"{program} was stopped by signal {-returncode}"
    return f"{program} failed"
