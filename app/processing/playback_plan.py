"""How a media gets to play in browsers, decided from its probe alone. Pure.

Three plans: the original plays as it is; its codecs play but its container does not, so the
streams are copied losslessly into a faststart MP4 (a remux: seconds per hour of video); or its
codecs do not play everywhere, so an H.264/AAC copy is encoded (a transcode). The original is
never touched: whatever a plan makes is a derived file of its own.
"""

from dataclasses import dataclass
from typing import Literal

from app.config import Settings
from app.processing.probe import ProbeResult

Plan = Literal["original", "remux", "transcode"]

# What current Chromium, Firefox and Safari all decode.
_VIDEO_EVERYWHERE = {"h264", "vp8", "vp9", "av1"}
_AUDIO_EVERYWHERE = {"aac", "mp3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_f32le"}
# What an MP4 may carry and browsers then decode from it.
_MP4_VIDEO = {"h264", "av1", "vp9"}
_MP4_AUDIO = {"aac", "mp3", "opus", "flac"}
# Containers every browser opens (ffprobe's demuxer names).
_PLAYABLE_CONTAINERS = {"mp4", "mov", "webm", "ogg", "mp3", "wav", "flac", "aac"}
# Matroska plays only as its WebM subset: these codecs.
_WEBM_VIDEO = {"vp8", "vp9", "av1"}
_WEBM_AUDIO = {"opus", "vorbis"}

# Names people know, for the reasons shown on the media page.
_NAMES = {
    "h264": "H.264", "hevc": "HEVC", "av1": "AV1", "vp9": "VP9", "vp8": "VP8",
    "mpeg4": "MPEG-4 Part 2", "mpeg2video": "MPEG-2", "prores": "ProRes", "aac": "AAC",
    "mp3": "MP3", "opus": "Opus", "ac3": "AC-3", "eac3": "E-AC-3", "dts": "DTS",
    "matroska": "Matroska", "avi": "AVI", "mpegts": "MPEG-TS", "asf": "ASF", "mpeg": "MPEG-PS",
    "mov": "QuickTime", "flac": "FLAC", "alac": "ALAC", "vorbis": "Vorbis",
}  # fmt: skip


@dataclass(frozen=True)
class PlaybackOptions:
    """What processing may make for playback (README's "Playback")."""

    remux: bool = True
    transcode: bool = True
    hls_heights: tuple[int, ...] = ()
    hls_min_bitrate: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> "PlaybackOptions":
        return cls(
            remux=settings.remux,
            transcode=settings.transcode,
            hls_heights=settings.hls_heights,
            hls_min_bitrate=settings.hls_min_bitrate,
        )

    def makes_copy(self, plan: "PlaybackPlan") -> bool:
        """Whether this plan's copy is made here."""
        return (plan.plan == "remux" and self.remux) or (
            plan.plan == "transcode" and self.transcode
        )


@dataclass(frozen=True)
class PlaybackPlan:
    """What to make so that browsers play a media, and why."""

    plan: Plan
    reason: str
    # For a remux: whether the audio must be encoded to AAC (the video is still copied).
    encode_audio: bool = False
    # Whether the original should still be offered first to browsers that decode it
    # (HEVC: Safari plays it, Chromium mostly not).
    offer_original: bool = False


def plan_playback(probe: ProbeResult) -> PlaybackPlan:
    """The plan for an audio or video file, from what ffprobe found in it."""
    names = set((probe.container or "").split(","))
    video, audio = probe.video_codec, probe.audio_codec
    if video is None and audio is None:
        return PlaybackPlan("original", "no audio or video stream")
    if _plays_as_is(names, video, audio):
        return PlaybackPlan("original", "browsers play this file as it is")
    container = _name(_first(probe.container))
    if video is not None and video not in _VIDEO_EVERYWHERE:
        offer = offers_original(video, probe.container)
        why = f"{_name(video)} video does not play in every browser"
        if offer:
            why += "; browsers that decode it (Safari) play the original"
        return PlaybackPlan("transcode", why, offer_original=offer)
    if video is None and audio not in _AUDIO_EVERYWHERE:
        return PlaybackPlan("transcode", f"{_name(audio)} audio does not play in browsers")
    if (video is None or video in _MP4_VIDEO) and (audio is None or audio in _MP4_AUDIO):
        return PlaybackPlan(
            "remux", f"its codecs play in browsers, the {container} container does not"
        )
    if video in _MP4_VIDEO:
        return PlaybackPlan(
            "remux",
            f"its video plays in browsers, its {_name(audio)} audio does not: the video is "
            "copied, the audio converted to AAC",
            encode_audio=True,
        )
    # VP8 (WebM only) in another container, or audio no MP4 carries.
    return PlaybackPlan("transcode", f"{_name(video)} in {container} does not play in browsers")


def offers_original(video_codec: str | None, container: str | None) -> bool:
    """Whether an original that needs a transcode should still be offered first: HEVC in
    MP4/QuickTime, which Safari (and Chromium with a hardware decoder) plays as it is."""
    names = set((container or "").split(","))
    return video_codec == "hevc" and bool(names & {"mov", "mp4"})


def _plays_as_is(names: set[str], video: str | None, audio: str | None) -> bool:
    if not names & _PLAYABLE_CONTAINERS:
        return False
    if "matroska" in names and not (
        video in (None, *_WEBM_VIDEO) and audio in (None, *_WEBM_AUDIO)
    ):
        # ffprobe names Matroska and WebM alike; only WebM's codecs play everywhere.
        return False
    if video is not None and video not in _VIDEO_EVERYWHERE:
        return False
    return audio is None or audio in _AUDIO_EVERYWHERE


def browser_playable(probe: ProbeResult) -> bool:
    """Whether browsers play this file as uploaded."""
    return plan_playback(probe).plan == "original" and (
        probe.video_codec is not None or probe.audio_codec is not None
    )


def _first(container: str | None) -> str:
    return (container or "").split(",")[0]


def _name(codec: str | None) -> str:
    if not codec:
        return "unknown"
    return _NAMES.get(codec, codec.upper())
