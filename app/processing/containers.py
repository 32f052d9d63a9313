"""Which ffmpeg demuxer may read an uploaded file, decided from its first bytes. Pure.

ffmpeg picks a demuxer from a file's content unless told, and some demuxers open other files
or URLs: HLS and DASH playlists, concat scripts, image sequences with patterns, QuickTime
references. An upload named ``holiday.mp4`` holding an HLS playlist would make ffmpeg read any
file on the server's disk. So the demuxer is chosen here, from an allow-list of containers that
only ever read the file they are given; anything else is not processed at all.
"""

from dataclasses import dataclass
from typing import Literal

ContainerKind = Literal["video", "audio", "image"]


@dataclass(frozen=True)
class Container:
    """A container ffmpeg may open, and what it is given to read it safely."""

    demuxer: str  # the name for ``-f``
    kind: ContainerKind  # audio/video container ("video") or a single image ("image")
    # Demuxer options that keep it from opening anything else (QuickTime "drefs").
    options: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        return self.kind == "image"


# QuickTime/MP4 can point at external files by path; ffmpeg leaves that off by default, and
# says so again here, so no build or version can turn it on for us.
_MOV = Container("mov", "video", ("-enable_drefs", "0", "-use_absolute_path", "0"))
# What the copies processing makes are, for probing them.
MP4_CONTAINER = _MOV
_MATROSKA = Container("matroska", "video")
_AVI = Container("avi", "video")
_ASF = Container("asf", "video")
_MPEGTS = Container("mpegts", "video")
_MPEG_PS = Container("mpeg", "video")
_OGG = Container("ogg", "video")
_FLAC = Container("flac", "audio")
_WAV = Container("wav", "audio")
_MP3 = Container("mp3", "audio")
_AAC = Container("aac", "audio")
_PNG = Container("png_pipe", "image")
_JPEG = Container("jpeg_pipe", "image")
_GIF = Container("gif", "image")
_WEBP = Container("webp_pipe", "image")
_BMP = Container("bmp_pipe", "image")

# Top-level atoms a QuickTime/MP4 file may start with.
_QUICKTIME_FIRST_ATOMS = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_TS_PACKET = 188
# How many MPEG-TS packets must line up before the content counts as a transport stream.
_TS_PACKETS_CHECKED = 3

# Every demuxer the allow-list may name: what probing and processing pass to ``-f``.
ALLOWED_DEMUXERS = frozenset(
    c.demuxer
    for c in (_MOV, _MATROSKA, _AVI, _ASF, _MPEGTS, _MPEG_PS, _OGG, _FLAC, _WAV, _MP3, _AAC)
    + (_PNG, _JPEG, _GIF, _WEBP, _BMP)
)


def sniff_container(head: bytes) -> Container | None:
    """The allowed container ``head`` (a file's first few KiB) starts, or ``None``."""
    if len(head) >= 12 and head[4:8] in _QUICKTIME_FIRST_ATOMS:
        return _MOV
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _MATROSKA
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"AVI ": _AVI, b"WAVE": _WAV, b"WEBP": _WEBP}.get(head[8:12])
    if head.startswith(_ASF_GUID):
        return _ASF
    if head.startswith(b"OggS"):
        return _OGG
    if head.startswith(b"fLaC"):
        return _FLAC
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if head.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _GIF
    if head.startswith(b"BM") and len(head) >= 14:
        return _BMP
    if head.startswith(b"\x00\x00\x01\xba"):
        return _MPEG_PS
    if _is_transport_stream(head):
        return _MPEGTS
    if head.startswith(b"ID3"):
        return _MP3
    return _audio_frames(head)


def _is_transport_stream(head: bytes) -> bool:
    # A sync byte every 188 bytes; Blu-ray's M2TS puts a 4-byte time code before each.
    for offset, packet in ((0, _TS_PACKET), (4, _TS_PACKET + 4)):
        needed = offset + packet * (_TS_PACKETS_CHECKED - 1) + 1
        if len(head) >= needed and all(
            head[offset + packet * i] == 0x47 for i in range(_TS_PACKETS_CHECKED)
        ):
            return True
    return False


def _audio_frames(head: bytes) -> Container | None:
    """Raw MPEG audio or ADTS AAC: a frame sync at the very start."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x03
    if head[1] & 0xF6 == 0xF0:  # MPEG-4/2 ADTS: layer bits are 0
        return _AAC
    if layer != 0 and (head[2] >> 4) not in (0x0, 0xF):  # a real bitrate index
        return _MP3
    return None


def input_arguments(container: Container, path: str) -> list[str]:
    """ffmpeg/ffprobe arguments that open ``path`` with this container's demuxer only, from
    the local file only (no protocol may open another file or URL)."""
    return [
        "-f",
        container.demuxer,
        "-protocol_whitelist",
        "file",
        *container.options,
        "-i",
        f"file:{path}",
    ]
