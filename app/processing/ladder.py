"""The HLS ladder of a video: which heights, at which bit rates. Pure.

Renditions are never upscaled and never given more bits than the source has; a video gets
adaptive streaming only when it is big enough for a slow link to stall on it. A rung's
"height" is the picture's short side, as "1080p" means for a portrait phone video too.
"""

from dataclasses import dataclass

# Bits per second at 720p, the scale the other heights follow (about 0.1 bit per pixel at
# 30 frames per second, what H.264 at "veryfast" needs to look clean on most footage).
_BITS_AT_720 = 2_800_000
# Bit rate grows slower than pixel count: larger frames compress better.
_GROWTH = 1.6
_AUDIO_BITS = 128_000
_MIN_VIDEO_BITS = 150_000


@dataclass(frozen=True)
class Rung:
    """One rendition to encode."""

    height: int  # the short side
    video_bits: int  # the cap (-maxrate); quality-based encoding may use less


def short_side(width: int | None, height: int | None) -> int | None:
    """The picture's short side (what "1080p" counts), if both sides are known."""
    return min(width, height) if width and height else None


def scale_to(short: int, portrait: bool) -> str:
    """An ffmpeg scale filter that makes the short side ``short`` pixels, keeping the
    aspect ratio with an even long side (H.264 with 4:2:0 needs even sides)."""
    return f"scale={short}:-2" if portrait else f"scale=-2:{short}"


def ladder_for(
    heights: tuple[int, ...],
    source_height: int | None,
    source_bits: int | None,
    min_source_bits: int,
) -> tuple[Rung, ...]:
    """The rungs to make for a source of this short side (``source_height``) and bit rate:
    none when the source is below ``min_source_bits`` (it streams well as it is) or no rung
    fits under it."""
    if not heights or not source_height or (source_bits or 0) < min_source_bits:
        return ()
    video_bits_available = max(_MIN_VIDEO_BITS, (source_bits or 0) - _AUDIO_BITS)
    rungs = []
    for height in heights:
        if height > source_height:
            continue
        nominal = round(_BITS_AT_720 * (height / 720) ** _GROWTH)
        rungs.append(Rung(height, max(_MIN_VIDEO_BITS, min(nominal, video_bits_available))))
    return tuple(rungs)
