"""HLS playlists for renditions stored as one fragmented MP4 each. Pure.

ffmpeg writes each rendition as a single file (``-hls_flags single_file``) and a media playlist
whose segments are byte ranges of it. The playlist is kept in the catalog with ``{uri}`` where
the file's URL goes, so that each request can name the file with its own query (a share link's
token); the master playlist is written here from the renditions' facts (RFC 8216).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

URI_PLACEHOLDER = "{uri}"
# A media playlist of a day of video at 4-second segments is well under this.
MAX_PLAYLIST_BYTES = 4 * 2**20

_BYTERANGE = re.compile(r"^(\d{1,15})@(\d{1,15})$")
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)')


class PlaylistError(ValueError):
    """A playlist that is not what ffmpeg writes for a single-file fMP4 rendition."""


@dataclass(frozen=True)
class Segment:
    duration: float
    length: int
    offset: int


@dataclass(frozen=True)
class MediaPlaylist:
    """One rendition's segments as byte ranges of its file."""

    target_duration: int
    init_length: int
    init_offset: int
    segments: tuple[Segment, ...]

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def peak_bandwidth(self) -> int:
        """Bits per second of the most demanding segment (RFC 8216 §4.3.4.2's BANDWIDTH).
        A short last segment is left out when there are others: its few bytes over a few
        milliseconds are no rate a player must sustain."""
        full = [s for s in self.segments if s.duration >= self.target_duration / 2]
        candidates = full or list(self.segments)
        return max((_bits_per_second(s.length, s.duration) for s in candidates), default=0)

    def average_bandwidth(self) -> int:
        total = sum(s.length for s in self.segments)
        return _bits_per_second(total, self.duration) if self.segments else 0

    def template(self) -> str:
        """The playlist with ``{uri}`` for the file: what the catalog keeps."""
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{self.target_duration}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            f'#EXT-X-MAP:URI="{URI_PLACEHOLDER}",BYTERANGE="{self.init_length}@{self.init_offset}"',
        ]
        for segment in self.segments:
            lines += [
                f"#EXTINF:{segment.duration:.6f},",
                f"#EXT-X-BYTERANGE:{segment.length}@{segment.offset}",
                URI_PLACEHOLDER,
            ]
        lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


# Segments are never shorter than this for a bit rate: two frames a microsecond apart would
# claim terabits per second, which no player could use to choose.
_MIN_RATE_SECONDS = 0.1


def _bits_per_second(length: int, duration: float) -> int:
    return max(1, round(length * 8 / max(duration, _MIN_RATE_SECONDS)))


def parse_media_playlist(text: str, file_size: int) -> MediaPlaylist:
    """Read ffmpeg's single-file fMP4 media playlist; every range must lie within the file."""
    target = None
    init: tuple[int, int] | None = None
    segments: list[Segment] = []
    duration: float | None = None
    byterange: tuple[int, int] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = _int(line.partition(":")[2])
        elif line.startswith("#EXT-X-MAP:"):
            attributes = dict(_ATTRIBUTE.findall(line.partition(":")[2]))
            init = _range(attributes.get("BYTERANGE", "").strip('"'), file_size)
        elif line.startswith("#EXTINF:"):
            duration = _float(line.partition(":")[2].split(",")[0])
        elif line.startswith("#EXT-X-BYTERANGE:"):
            byterange = _range(line.partition(":")[2], file_size)
        elif line and not line.startswith("#"):
            if duration is None or byterange is None:
                raise PlaylistError("a segment without its duration or byte range")
            segments.append(Segment(duration, byterange[0], byterange[1]))
            duration = byterange = None
    if target is None or init is None or not segments:
        raise PlaylistError("not a single-file fMP4 media playlist")
    # RFC 8216 §4.3.3.1: at least each segment's duration rounded; a video of a frame or two
    # makes ffmpeg write 0, which players refuse.
    target = max(1, target, *(round(segment.duration) for segment in segments))
    return MediaPlaylist(target, init[0], init[1], tuple(segments))


def render_media_playlist(template: str, uri: str) -> str:
    """A stored playlist with its file's URL in place."""
    return template.replace(URI_PLACEHOLDER, uri)


@dataclass(frozen=True)
class Variant:
    """What the master playlist says of one rendition."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    codecs: str


def render_master_playlist(variants: Sequence[Variant]) -> str:
    """The master playlist, best rendition first."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in sorted(variants, key=lambda v: v.bandwidth, reverse=True):
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={variant.bandwidth},"
            f"AVERAGE-BANDWIDTH={variant.average_bandwidth},"
            f'RESOLUTION={variant.width}x{variant.height},CODECS="{variant.codecs}"',
            variant.uri,
        ]
    return "\n".join(lines) + "\n"


def master_variant_facts(text: str) -> list[tuple[int, int, str]]:
    """``(width, height, codecs)`` of each variant in ffmpeg's master playlist, in order."""
    found = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(_ATTRIBUTE.findall(line.partition(":")[2]))
            width, _, height = attributes.get("RESOLUTION", "").partition("x")
            codecs = attributes.get("CODECS", "").strip('"')
            if not (width.isdigit() and height.isdigit() and codecs):
                raise PlaylistError("a variant without resolution or codecs")
            found.append((int(width), int(height), codecs))
    return found


def _range(value: str, file_size: int) -> tuple[int, int]:
    match = _BYTERANGE.match(value.strip())
    if match is None:
        raise PlaylistError(f"not a byte range: {value[:40]!r}")
    length, offset = int(match.group(1)), int(match.group(2))
    if length <= 0 or offset + length > file_size:
        raise PlaylistError("a byte range outside the file")
    return length, offset


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise PlaylistError(f"not a number: {value[:40]!r}") from None


def _float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise PlaylistError(f"not a duration: {value[:40]!r}") from None
    if not number > 0:
        raise PlaylistError("a segment of no duration")
    return number
