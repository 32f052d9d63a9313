"""HLS playlists: reading ffmpeg's single-file fMP4 output, and writing ours."""

import pytest

from app.processing.hls import (
    PlaylistError,
    Variant,
    master_variant_facts,
    parse_media_playlist,
    render_master_playlist,
    render_media_playlist,
)
from app.processing.ladder import ladder_for, scale_to, short_side

FFMPEG_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="abcr0.part",BYTERANGE="1353@0"
#EXTINF:4.000000,
#EXT-X-BYTERANGE:500000@1353
abcr0.part
#EXTINF:4.000000,
#EXT-X-BYTERANGE:1000000@501353
abcr0.part
#EXTINF:0.040000,
#EXT-X-BYTERANGE:20000@1501353
abcr0.part
#EXT-X-ENDLIST
"""
SIZE = 1521353


def test_segments_are_byte_ranges_of_the_one_file() -> None:
    playlist = parse_media_playlist(FFMPEG_PLAYLIST, SIZE)
    assert (playlist.init_length, playlist.init_offset) == (1353, 0)
    assert [(s.length, s.offset) for s in playlist.segments] == [
        (500000, 1353), (1000000, 501353), (20000, 1501353)
    ]  # fmt: skip
    assert playlist.duration == pytest.approx(8.04)


def test_bandwidth_is_the_peak_of_full_segments_and_the_average_of_all() -> None:
    playlist = parse_media_playlist(FFMPEG_PLAYLIST, SIZE)
    # The 40 ms tail would claim 4 Mbit/s; no player needs to sustain that.
    assert playlist.peak_bandwidth() == 2_000_000
    assert playlist.average_bandwidth() == round(1_520_000 * 8 / 8.04)


def test_a_range_beyond_the_file_or_a_missing_map_is_refused() -> None:
    with pytest.raises(PlaylistError):
        parse_media_playlist(FFMPEG_PLAYLIST, SIZE - 1)
    with pytest.raises(PlaylistError):
        parse_media_playlist(FFMPEG_PLAYLIST.replace("#EXT-X-MAP", "#EXT-X-NOPE"), SIZE)
    with pytest.raises(PlaylistError):
        parse_media_playlist(FFMPEG_PLAYLIST.replace("1353@0", "-5@0"), SIZE)


def test_the_stored_template_gets_each_requests_uri() -> None:
    template = parse_media_playlist(FFMPEG_PLAYLIST, SIZE).template()
    assert "abcr0.part" not in template
    text = render_media_playlist(template, "360.mp4?v=k&share=t")
    assert '#EXT-X-MAP:URI="360.mp4?v=k&share=t",BYTERANGE="1353@0"' in text
    assert text.count("\n360.mp4?v=k&share=t\n") == 3
    assert text.rstrip().endswith("#EXT-X-ENDLIST")


def test_the_master_lists_renditions_best_first_with_what_players_choose_by() -> None:
    text = render_master_playlist(
        [
            Variant("360.m3u8", 600_000, 500_000, 640, 360, "avc1.64001e,mp4a.40.2"),
            Variant("720.m3u8", 2_400_000, 2_000_000, 1280, 720, "avc1.64001f,mp4a.40.2"),
        ]
    )
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert lines[3] == (
        "#EXT-X-STREAM-INF:BANDWIDTH=2400000,AVERAGE-BANDWIDTH=2000000,"
        'RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"'
    )
    assert lines[4] == "720.m3u8" and lines[6] == "360.m3u8"
    assert master_variant_facts(text) == [
        (1280, 720, "avc1.64001f,mp4a.40.2"), (640, 360, "avc1.64001e,mp4a.40.2")
    ]  # fmt: skip


def test_the_ladder_never_upscales_nor_exceeds_the_source() -> None:
    heights = (1080, 720, 480, 360)
    rungs = ladder_for(heights, 720, 20_000_000, 3_000_000)
    assert [r.height for r in rungs] == [720, 480, 360]
    assert rungs[0].video_bits > rungs[1].video_bits > rungs[2].video_bits
    # A 1 Mbit/s source: no rendition gets more bits than it has.
    assert all(r.video_bits <= 1_000_000 for r in ladder_for(heights, 1080, 1_000_000, 0))
    assert ladder_for(heights, 1080, 2_000_000, 3_000_000) == ()  # streams well as it is
    assert ladder_for((), 1080, 20_000_000, 0) == ()
    assert ladder_for(heights, 240, 20_000_000, 0) == ()  # smaller than every rung


def test_a_rung_is_the_short_side_so_portrait_video_keeps_its_detail() -> None:
    # A portrait 1080×1920 phone video is "1080p": every rung fits.
    assert short_side(1080, 1920) == 1080
    assert [r.height for r in ladder_for((1080, 720), short_side(1080, 1920), 9_000_000, 0)] == [
        1080, 720
    ]  # fmt: skip
    assert scale_to(720, portrait=True) == "scale=720:-2"
    assert scale_to(720, portrait=False) == "scale=-2:720"


def test_frames_microseconds_apart_claim_no_absurd_rate_and_a_usable_target() -> None:
    text = FFMPEG_PLAYLIST.replace("#EXT-X-TARGETDURATION:4", "#EXT-X-TARGETDURATION:0")
    text = text.replace("#EXTINF:4.000000,", "#EXTINF:0.000002,")
    playlist = parse_media_playlist(text, SIZE)
    assert playlist.target_duration >= 1  # players refuse 0
    assert playlist.peak_bandwidth() <= 1_000_000 * 8 / 0.1  # the bytes over 100 ms at most
    assert "#EXT-X-TARGETDURATION:1\n" in playlist.template()
