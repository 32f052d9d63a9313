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
    video_profile: str | None = None
    video_level: int | None = None
    video_tag: str | None = None  # the container's fourcc ("hvc1", "hev1", "avc1"…)
    pix_fmt: str | None = None
    audio_profile: str | None = None
    has_cover: bool = False  # an attached picture: an album's cover art
    tag_title: str | None = None
    tag_artist: str | None = None
    tag_album: str | None = None

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
    tags = _tags(fmt, audio)
    width = _positive_int((video or {}).get("width"))
    height = _positive_int((video or {}).get("height"))
    if _quarter_turned(video or {}):
        # Phones store portrait video as landscape frames and a rotation; players (and
        # ffmpeg, which turns frames as it decodes) show it turned: so do we.
        width, height = height, width
    return ProbeResult(
        duration=_positive_float(fmt.get("duration"))
        or _positive_float((video or {}).get("duration")),
        width=width,
        height=height,
        video_codec=(video or {}).get("codec_name"),
        audio_codec=(audio or {}).get("codec_name"),
        bitrate=_positive_int(fmt.get("bit_rate")),
        container=fmt.get("format_name"),
        video_profile=_text((video or {}).get("profile")),
        video_level=_positive_int((video or {}).get("level")),
        video_tag=_text((video or {}).get("codec_tag_string")),
        pix_fmt=_text((video or {}).get("pix_fmt")),
        audio_profile=_text((audio or {}).get("profile")),
        has_cover=any(
            s.get("codec_type") == "video" and (s.get("disposition") or {}).get("attached_pic")
            for s in streams
        ),
        tag_title=tags.get("title"),
        tag_artist=tags.get("artist") or tags.get("album_artist"),
        tag_album=tags.get("album"),
    )


def _quarter_turned(video: dict[str, Any]) -> bool:
    """Whether the stream's display matrix (or an old ``rotate`` tag) turns it by 90°."""
    rotations = [
        side.get("rotation") for side in video.get("side_data_list") or [] if isinstance(side, dict)
    ]
    rotations.append((video.get("tags") or {}).get("rotate"))
    for rotation in rotations:
        try:
            if round(float(rotation)) % 180 == 90:
                return True
        except (TypeError, ValueError):
            continue
    return False


# Longest tag kept: a title, an artist, an album.
_MAX_TAG_CHARS = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _tags(fmt: dict[str, Any], audio: dict[str, Any] | None) -> dict[str, str]:
    """Title, artist and album: ID3 and MP4 put them on the file, Ogg on the audio stream;
    keys in any case (FLAC writes ``TITLE``)."""
    found: dict[str, str] = {}
    for source in ((audio or {}).get("tags"), fmt.get("tags")):
        if not isinstance(source, dict):
            continue
        for key, value in source.items():
            text = _text(value)
            if isinstance(key, str) and text:
                found[key.lower()] = text
    return found


def _text(value: Any) -> str | None:
    """A short single-line string from what a file says, or None."""
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub(" ", value).strip()[:_MAX_TAG_CHARS].strip()
    return text or None


class PictureFacts(NamedTuple):
    """What a photo's EXIF says of where it comes from."""

    camera: str | None
    taken_at: str | None  # "2019-07-14 15:02:11", the camera's local time


_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


def parse_picture_facts(output: str) -> PictureFacts:
    """Read ``ffprobe -show_frames`` output of a picture: its first frame's EXIF tags."""
    data: dict[str, Any] = json.loads(output)
    frames = data.get("frames") or []
    tags = (frames[0].get("tags") if frames and isinstance(frames[0], dict) else None) or {}
    if not isinstance(tags, dict):
        return PictureFacts(None, None)
    make, model = _text(tags.get("Make")), _text(tags.get("Model"))
    # Most cameras repeat the maker in the model ("Canon" / "Canon EOS 80D").
    if make and model and model.lower().startswith(make.split()[0].lower()):
        camera: str | None = model
    else:
        camera = _text(" ".join(part for part in (make, model) if part))
    taken = None
    for key in ("DateTimeOriginal", "DateTimeDigitized", "DateTime"):
        found = _EXIF_DATE.match(_text(tags.get(key)) or "")
        if found and found.group(1) != "0000":
            year, month, day, hour, minute, second = found.groups()
            taken = f"{year}-{month}-{day} {hour}:{minute}:{second}"
            break
    return PictureFacts(camera, taken)


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
    return too_many_pixels(int(found.group(1)), int(found.group(2)), max_pixels)


def too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    """Why a picture of this size is not processed."""
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
