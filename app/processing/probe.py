"""What ffprobe says about a file, and whether browsers can play it. Pure functions."""

import json
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


def is_mp4_family(probe: ProbeResult) -> bool:
    """MP4 and QuickTime, the containers that can have their index (moov) at the end."""
    return "mp4" in (probe.container or "").split(",") or "mov" in (probe.container or "").split(
        ","
    )


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
