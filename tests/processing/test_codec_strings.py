"""RFC 6381 codecs strings from ffprobe's facts."""

from app.processing.codec_strings import codecs_parameter, video_codec_string
from app.processing.probe import ProbeResult


def _probe(**facts: object) -> ProbeResult:
    base = dict(duration=1.0, width=1, height=1, video_codec=None, audio_codec=None,
                bitrate=None, container="mov")  # fmt: skip
    return ProbeResult(**{**base, **facts})  # type: ignore[arg-type]


def test_h264_profiles_and_levels_become_avc1_strings() -> None:
    assert video_codec_string(_probe(video_codec="h264", video_profile="High", video_level=31)) == (
        "avc1.64001F"
    )
    assert (
        video_codec_string(
            _probe(video_codec="h264", video_profile="Constrained Baseline", video_level=13)
        )
        == "avc1.42E00D"
    )


def test_hevc_keeps_its_tag_because_safari_plays_only_hvc1() -> None:
    hvc1 = _probe(video_codec="hevc", video_profile="Main", video_level=93, video_tag="hvc1")
    hev1 = _probe(video_codec="hevc", video_profile="Main 10", video_level=120, video_tag="hev1")
    assert video_codec_string(hvc1) == "hvc1.1.6.L93.B0"
    assert video_codec_string(hev1) == "hev1.2.4.L120.B0"


def test_both_streams_or_none_make_the_parameter() -> None:
    full = _probe(video_codec="h264", video_profile="Main", video_level=30, audio_codec="aac",
                  audio_profile="LC")  # fmt: skip
    assert codecs_parameter(full) == "avc1.4D401E,mp4a.40.2"
    assert codecs_parameter(_probe(audio_codec="mp3")) == "mp4a.40.34"
    # A codec without an MP4 name: no parameter, so the browser tries instead of refusing.
    assert codecs_parameter(_probe(video_codec="mpeg4", audio_codec="aac")) is None
