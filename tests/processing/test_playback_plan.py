"""The playback plan, decided from a probe alone."""

import pytest

from app.processing.playback_plan import browser_playable, plan_playback
from app.processing.probe import ProbeResult


def _probe(container: str, video: str | None, audio: str | None) -> ProbeResult:
    return ProbeResult(10.0, 320 if video else None, 240 if video else None, video, audio,
                       1_000_000, container)  # fmt: skip


MOV = "mov,mp4,m4a,3gp,3g2,mj2"
MKV = "matroska,webm"


@pytest.mark.parametrize(
    ("container", "video", "audio", "plan"),
    [
        (MOV, "h264", "aac", "original"),  # camera MP4, iPhone H.264 MOV
        (MKV, "vp9", "opus", "original"),  # WebM
        (MKV, "av1", None, "original"),
        ("mp3", None, "mp3", "original"),
        ("flac", None, "flac", "original"),
        (MKV, "h264", "aac", "remux"),  # OBS
        (MKV, "hevc", "aac", "transcode"),
        ("mpegts", "h264", "aac", "remux"),  # camcorders, recordings
        ("avi", "h264", "mp3", "remux"),
        (MKV, "h264", "ac3", "remux"),  # the video copied, the audio converted
        (MKV, "av1", "opus", "original"),
        ("avi", "mpeg4", "mp3", "transcode"),  # DivX/Xvid
        ("asf", "wmv3", "wmav2", "transcode"),
        (MOV, "hevc", "aac", "transcode"),  # iPhone HEVC: Safari gets the original
        (MOV, "prores", "pcm_s16le", "transcode"),
        (MKV, "vp8", "vorbis", "original"),
        ("avi", "vp8", "mp3", "transcode"),  # VP8 plays only from WebM
        (MOV, None, "alac", "transcode"),  # Apple Lossless in M4A
        ("asf", None, "wmav2", "transcode"),
        (MKV, None, "aac", "remux"),  # AAC in MKA
    ],
)
def test_each_kind_of_file_gets_the_plan_browsers_need(
    container: str, video: str | None, audio: str | None, plan: str
) -> None:
    decided = plan_playback(_probe(container, video, audio))
    assert decided.plan == plan, decided
    assert decided.reason
    assert browser_playable(_probe(container, video, audio)) is (plan == "original")


def test_a_remux_converts_only_audio_browsers_cannot_decode() -> None:
    assert plan_playback(_probe(MKV, "h264", "ac3")).encode_audio
    assert not plan_playback(_probe(MKV, "h264", "aac")).encode_audio


def test_hevc_originals_are_offered_first_only_from_mp4_and_quicktime() -> None:
    assert plan_playback(_probe(MOV, "hevc", "aac")).offer_original
    assert not plan_playback(_probe(MKV, "hevc", "aac")).offer_original
    assert not plan_playback(_probe("avi", "mpeg4", "mp3")).offer_original


def test_the_reason_names_what_browsers_lack() -> None:
    assert "Matroska" in plan_playback(_probe(MKV, "h264", "aac")).reason
    assert "HEVC" in plan_playback(_probe(MOV, "hevc", "aac")).reason
    assert "AC-3" in plan_playback(_probe(MKV, "h264", "ac3")).reason
