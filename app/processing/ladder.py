"""The HLS ladder of a video: which heights, at which bit rates. Pure.

Renditions are never upscaled and never given more bits than the source has; a video gets
adaptive streaming only when it is big enough for a slow link to stall on it.
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

    height: int
    video_bits: int  # the cap (-maxrate); quality-based encoding may use less


def ladder_for(
    heights: tuple[int, ...],
    source_height: int | None,
    source_bits: int | None,
    min_source_bits: int,
) -> tuple[Rung, ...]:
    """The rungs to make for a source of this height and bit rate: none when the source is
    below ``min_source_bits`` (it streams well as it is) or no rung fits under it."""
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
