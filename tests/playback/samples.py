"""The files people actually have, made small with ffmpeg at test time: an OBS recording
(H.264/AAC in Matroska), an iPhone clip (HEVC in QuickTime, tagged hvc1), a 720p clip for an
HLS ladder, an MP3 with cover art and tags, a photo with EXIF, a very wide picture."""

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.media_samples import FFMPEG

CLIP_SECONDS = 4.0
LADDER_SECONDS = 12.0


@dataclass(frozen=True)
class PlaybackSamples:
    obs_mkv: Path
    iphone_mov: Path
    hevc_mkv: Path
    ac3_mkv: Path
    clip_720p: Path
    small_mp4: Path
    portrait_mp4: Path
    song_mp3: Path
    big_cover_mp3: Path
    song_m4a: Path
    song_flac: Path
    photo_jpg: Path
    wide_png: Path


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _av(size: str, seconds: float, *extra_video: str) -> list[str]:
    return [
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        *extra_video, "-pix_fmt", "yuv420p", "-shortest",
    ]  # fmt: skip


def make_playback_samples(directory: Path) -> PlaybackSamples:
    """Every sample, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    seconds = CLIP_SECONDS
    obs = directory / "2024-05-01 18-30-00.mkv"
    _ffmpeg(*_av("320x240", seconds), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            str(obs))  # fmt: skip
    iphone = directory / "IMG_0042.MOV"
    _ffmpeg(*_av("320x240", seconds), "-c:v", "libx265", "-preset", "ultrafast",
            "-x265-params", "log-level=error", "-tag:v", "hvc1", "-c:a", "aac",
            "-f", "mov", str(iphone))  # fmt: skip
    hevc_mkv = directory / "phone.mkv"
    _ffmpeg(*_av("320x240", seconds), "-c:v", "libx265", "-preset", "ultrafast",
            "-x265-params", "log-level=error", "-c:a", "aac", str(hevc_mkv))  # fmt: skip
    ac3 = directory / "broadcast.mkv"
    _ffmpeg(*_av("320x240", seconds), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "ac3",
            str(ac3))  # fmt: skip
    # Noise makes the renditions' bit rates differ as real footage does (test patterns alone
    # compress to almost nothing at any size).
    clip = directory / "GOPR0001.MP4"
    _ffmpeg(*_av("1280x720", LADDER_SECONDS, "-vf", "noise=alls=8:allf=t"), "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "30", "-c:a", "aac", str(clip))  # fmt: skip
    # 360p: one rung of a 720,360 ladder, cheap to encode.
    small = directory / "tiny.mp4"
    _ffmpeg(*_av("640x360", seconds), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            str(small))  # fmt: skip
    # Phones store portrait video as landscape frames turned by the display matrix.
    portrait = directory / "VID_portrait.mp4"
    _ffmpeg("-i", str(small), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(portrait))
    cover = directory / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=300x300", "-frames:v", "1", str(cover))
    song = directory / "night song.mp3"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:duration=3", "-i", str(cover),
            "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png",
            "-disposition:v", "attached_pic", "-metadata", "title=Night Song",
            "-metadata", "artist=The Owls", "-metadata", "album=Dusk", str(song))  # fmt: skip
    # A cover of more pixels than the playback server's limit (1.2 MP > 1 MP).
    big_cover = directory / "big cover.png"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1200x1000", "-frames:v", "1", str(big_cover))
    big = directory / "big cover.mp3"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=260:duration=2", "-i", str(big_cover),
            "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png",
            "-disposition:v", "attached_pic", "-metadata", "artist=The Giants",
            str(big))  # fmt: skip
    # The same cover as MP4's covr atom and as a FLAC picture block.
    m4a = directory / "dawn chorus.m4a"
    flac = directory / "dawn chorus.flac"
    for target, codec in ((m4a, "aac"), (flac, "flac")):
        _ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=2", "-i", str(cover),
                "-map", "0:a", "-map", "1:v", "-c:a", codec, "-c:v", "png",
                "-disposition:v", "attached_pic", "-metadata", "artist=The Larks",
                str(target))  # fmt: skip
    plain = directory / "plain.jpg"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1", str(plain))
    photo = directory / "IMG_1234.jpg"
    data = plain.read_bytes()
    photo.write_bytes(
        data[:2] + exif_segment("Canon", "Canon EOS 80D", "2019:07:14 15:02:11") + data[2:]
    )
    wide = directory / "panorama.png"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=3000x200", "-frames:v", "1", str(wide))
    return PlaybackSamples(
        obs, iphone, hevc_mkv, ac3, clip, small, portrait, song, big, m4a, flac, photo, wide
    )


def exif_segment(make: str, model: str, taken: str) -> bytes:
    """A JPEG APP1 segment with an EXIF block (big-endian TIFF) naming the camera and the
    time a photo was taken, as cameras write it."""

    def ascii_entry(tag: int, text: str) -> tuple[int, int, bytes, int]:
        data = text.encode() + b"\0"
        return tag, 2, data, len(data)

    def ifd(entries: list[tuple[int, int, bytes, int]], offset: int) -> bytes:
        head = struct.pack(">H", len(entries))
        extra = b""
        extra_at = offset + 2 + 12 * len(entries) + 4
        for tag, kind, payload, count in entries:
            if len(payload) <= 4:
                head += struct.pack(">HHI", tag, kind, count) + payload.ljust(4, b"\0")
            else:
                head += struct.pack(">HHII", tag, kind, count, extra_at + len(extra))
                extra += payload
        return head + b"\0\0\0\0" + extra

    first = [ascii_entry(0x010F, make), ascii_entry(0x0110, model), (0x8769, 4, bytes(4), 1)]
    exif_at = 8 + len(ifd(first, 8))
    first[2] = (0x8769, 4, struct.pack(">I", exif_at), 1)
    tiff = b"MM\0*" + struct.pack(">I", 8) + ifd(first, 8)
    tiff += ifd([ascii_entry(0x9003, taken)], exif_at)
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
