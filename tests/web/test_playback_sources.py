"""The order of a player's sources."""

from app.web.playback_sources import PlaybackFacts, playback_sources

MOV = "mov,mp4,m4a,3gp,3g2,mj2"


def _facts(container: str, video: str | None, plan: str | None, kind: str = "video",
           codecs: str | None = "c", copy_codecs: str | None = "avc1.64001f,mp4a.40.2",
           content_type: str = "video/quicktime") -> PlaybackFacts:  # fmt: skip
    return PlaybackFacts(kind, content_type, container, video, codecs, plan, copy_codecs)


def test_an_hevc_original_comes_first_with_its_codecs_then_the_copy() -> None:
    sources = playback_sources(
        _facts(MOV, "hevc", "transcode", codecs="hvc1.1.6.L93.B0,mp4a.40.2"), "/s", "/p"
    )
    assert [s.url for s in sources] == ["/s", "/p"]
    assert sources[0].type == 'video/mp4; codecs="hvc1.1.6.L93.B0,mp4a.40.2"'
    assert sources[1].type == 'video/mp4; codecs="avc1.64001f,mp4a.40.2"'


def test_a_copy_replaces_an_original_no_browser_plays() -> None:
    assert [
        s.url for s in playback_sources(_facts("matroska,webm", "h264", "remux"), "/s", "/p")
    ] == ["/p"]
    # No copy (yet, or not made here): the original, for the browser to try.
    assert [s.url for s in playback_sources(_facts("avi", "mpeg4", "transcode"), "/s", None)] == [
        "/s"
    ]


def test_a_quicktime_original_is_announced_as_mp4() -> None:
    (source,) = playback_sources(_facts(MOV, "h264", "original", codecs=None), "/s", None)
    # Chromium answers "" to video/quicktime, yet plays the same bytes as video/mp4.
    assert source.type == "video/mp4"


def test_audio_copies_are_audio_mp4_and_other_kinds_have_no_player() -> None:
    (source,) = playback_sources(
        _facts(MOV, None, "transcode", kind="audio", copy_codecs="mp4a.40.2"), "/s", "/p"
    )
    assert source == ("/p", 'audio/mp4; codecs="mp4a.40.2"')
    assert playback_sources(_facts("png_pipe", "png", None, kind="image"), "/s", None) == []


def test_media_processed_before_plans_play_their_copy_when_they_have_one() -> None:
    sources = playback_sources(_facts("avi", "mpeg4", None, copy_codecs=None), "/s", "/p")
    assert sources == [("/p", "video/mp4")]
    assert [s.url for s in playback_sources(_facts(MOV, "h264", None), "/s", None)] == ["/s"]
