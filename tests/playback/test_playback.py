"""Playback plans end to end against a real server and real ffmpeg: remuxed copies are
lossless, transcoded ones are H.264, HLS renditions are playlists of byte ranges that ffprobe
reads over HTTP, and the original download never changes."""

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import LiveServer, run_cli, upload_file, wait_for_processing
from tests.media_samples import FFMPEG, FFPROBE, moov_before_mdat
from tests.playback.conftest import Processed
from tests.playback.samples import PlaybackSamples

AVC_WITH_AAC = re.compile(r'^video/mp4; codecs="avc1\.[0-9A-F]{6},mp4a\.40\.2"$')


def _fetch(server: LiveServer, url: str, target: Path) -> Path:
    with server.client() as client:
        response = client.get(url)
    assert response.status_code == 200, response.text
    target.write_bytes(response.content)
    return target


def _stream_hash(path: Path, stream: str) -> str:
    """The MD5 of a stream's packets as stored: equal only for a lossless copy."""
    return subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", f"0:{stream}", "-c", "copy",
         "-f", "hash", "-hash", "md5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _codec(path: Path, stream: str) -> str:
    return subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", stream, "-show_entries",
         "stream=codec_name", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def test_an_obs_recording_is_remuxed_losslessly_and_downloads_as_recorded(
    playback_server: LiveServer,
    processed: Processed,
    playback_samples: PlaybackSamples,
    tmp_path: Path,
) -> None:
    media = processed["obs_mkv"]
    assert media["processing"]["state"] == "done", media["processing"]
    assert media["playback"]["plan"] == "remux"
    assert "Matroska" in media["playback"]["reason"]
    ((source),) = media["sources"]
    assert "/playback" in source["url"] and AVC_WITH_AAC.match(source["type"]), source
    copy = _fetch(playback_server, source["url"], tmp_path / "copy.mp4")
    assert moov_before_mdat(copy)  # faststart: plays before it has all arrived
    original = playback_samples.obs_mkv
    assert _stream_hash(copy, "v") == _stream_hash(original, "v")
    assert _stream_hash(copy, "a") == _stream_hash(original, "a")
    download = _fetch(playback_server, media["download_url"], tmp_path / "download.mkv")
    assert download.read_bytes() == original.read_bytes()
    assert hashlib.sha256(download.read_bytes()).hexdigest() == media["sha256"]


def test_audio_browsers_cannot_decode_is_converted_while_the_video_is_copied(
    playback_server: LiveServer,
    processed: Processed,
    playback_samples: PlaybackSamples,
    tmp_path: Path,
) -> None:
    media = processed["ac3_mkv"]
    assert media["playback"]["plan"] == "remux"
    assert "AC-3" in media["playback"]["reason"]
    copy = _fetch(playback_server, media["playback_url"], tmp_path / "copy.mp4")
    assert _codec(copy, "a") == "aac"
    assert _stream_hash(copy, "v") == _stream_hash(playback_samples.ac3_mkv, "v")


def test_an_iphone_hevc_clip_offers_the_original_first_then_an_h264_copy(
    playback_server: LiveServer, processed: Processed, tmp_path: Path
) -> None:
    media = processed["iphone_mov"]
    assert media["playback"]["plan"] == "transcode"
    assert "HEVC" in media["playback"]["reason"]
    original, copy = media["sources"]
    assert original["url"] == media["stream_url"]
    assert re.match(r'^video/mp4; codecs="hvc1\.1\.6\.L\d+\.B0,mp4a\.40\.2"$', original["type"])
    assert "/playback" in copy["url"] and AVC_WITH_AAC.match(copy["type"]), copy
    assert _codec(_fetch(playback_server, copy["url"], tmp_path / "copy.mp4"), "v") == "h264"


def _master(server: LiveServer, media: dict[str, Any]) -> list[dict[str, str]]:
    with server.client() as client:
        response = client.get(media["hls_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    lines = response.text.splitlines()
    assert lines[0] == "#EXTM3U"
    variants = []
    for info, uri in zip(lines, lines[1:], strict=False):
        if info.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', info.partition(":")[2]))
            variants.append({**{k: v.strip('"') for k, v in attributes.items()}, "uri": uri})
    return variants


def test_the_master_playlist_tells_players_what_each_rendition_needs(
    playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["clip_720p"]
    assert media["processing"]["state"] == "done", media["processing"]
    high, low = _master(playback_server, media)
    assert (high["RESOLUTION"], low["RESOLUTION"]) == ("1280x720", "640x360")
    assert int(high["BANDWIDTH"]) > int(low["BANDWIDTH"]) > 100_000
    for variant in (high, low):
        assert int(variant["AVERAGE-BANDWIDTH"]) <= int(variant["BANDWIDTH"])
        assert re.match(r"^avc1\.64[0-9a-fA-F]{4},mp4a\.40\.2$", variant["CODECS"]), variant


def test_segments_are_byte_ranges_of_one_file_served_with_ranges_and_etags(
    playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["clip_720p"]
    base = media["hls_url"].rpartition("/")[0]
    low = _master(playback_server, media)[1]
    with playback_server.client() as client:
        playlist = client.get(f"{base}/{low['uri']}").text
        (uri,) = set(re.findall(r"^(360\.mp4\?v=\w+)$", playlist, re.MULTILINE))
        head = client.head(f"{base}/{uri}")
        size = int(head.headers["content-length"])
        ranges = [(int(n), int(o)) for n, o in re.findall(r"BYTERANGE[:=]\"?(\d+)@(\d+)", playlist)]
        # The init section, then segments, back to back to the end of the file.
        position = 0
        for length, offset in ranges:
            assert offset == position
            position += length
        assert position == size
        length, offset = ranges[1]
        segment = client.get(
            f"{base}/{uri}", headers={"Range": f"bytes={offset}-{offset + length - 1}"}
        )
        assert segment.status_code == 206
        assert segment.content[4:8] in (b"styp", b"sidx", b"moof")  # a CMAF segment
        etag = segment.headers["etag"]
        again = client.get(f"{base}/{uri}", headers={"If-None-Match": etag})
        assert again.status_code == 304
        init = client.get(f"{base}/{uri}", headers={"Range": f"bytes=0-{ranges[0][0] - 1}"})
        assert init.content[4:8] == b"ftyp"


def test_ffprobe_reads_the_adaptive_stream_over_http_with_a_token(
    playback_server: LiveServer, processed: Processed
) -> None:
    url = playback_server.base_url + processed["clip_720p"]["hls_url"]
    result = subprocess.run(
        [FFPROBE, "-v", "error", "-headers", f"Authorization: Bearer {playback_server.token}\r\n",
         "-show_entries", "stream=codec_name,height", "-of", "csv=p=0", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {"h264,720", "h264,360", "aac"} <= set(result.stdout.split())


def test_a_portrait_phone_video_is_tall_and_its_rendition_keeps_its_short_side(
    playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["portrait_mp4"]  # 640×360 frames, turned a quarter
    assert (media["width"], media["height"]) == (360, 640)
    (variant,) = _master(playback_server, media)
    assert variant["RESOLUTION"] == "360x640"  # "360p": the short side, never upscaled


def test_each_rendition_is_a_step_with_live_progress(processed: Processed) -> None:
    ladder = [progress for step, progress in processed.steps if step == "renditions 720p+360p"]
    assert len(set(ladder)) >= 2, processed.steps
    assert ladder == sorted(ladder)


def test_playlists_carry_a_share_link_to_every_uri_and_hide_private_videos(
    playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["clip_720p"]
    assert media["visibility"] == "private"
    anonymous = playback_server.anonymous_client()
    with anonymous, playback_server.client() as owner:
        assert anonymous.get(media["hls_url"]).status_code == 404
        share = owner.post(f"/api/media/{media['id']}/shares", json={}).json()
        token = share["url"].rpartition("/")[2]
        master = anonymous.get(f"{media['hls_url']}?share={token}")
        assert master.status_code == 200
        base = media["hls_url"].rpartition("/")[0]
        for uri in re.findall(r"^\d+\.m3u8\?.*$", master.text, re.MULTILINE):
            assert f"share={token}" in uri
            playlist = anonymous.get(f"{base}/{uri}")
            assert playlist.status_code == 200
            (file_uri,) = set(re.findall(r"^\d+\.mp4\?.*$", playlist.text, re.MULTILINE))
            assert f"share={token}" in file_uri
            part = anonymous.get(f"{base}/{file_uri}", headers={"Range": "bytes=0-99"})
            assert part.status_code == 206
        assert anonymous.get(f"{base}/360.mp4", headers={"Range": "bytes=0-99"}).status_code == 404
        for missing in ("480.m3u8", "480.mp4", "abc.m3u8", "-1.mp4"):
            assert owner.get(f"{base}/{missing}").status_code == 404


def test_mp3_cover_art_becomes_the_thumbnail_and_its_tags_are_shown(
    playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["song_mp3"]
    assert media["processing"]["state"] == "done", media["processing"]
    assert media["tags"] == {"title": "Night Song", "artist": "The Owls", "album": "Dusk"}
    with playback_server.client() as client:
        thumbnail = client.get(media["thumbnail_url"])
        assert thumbnail.headers["content-type"] == "image/jpeg"
        assert thumbnail.content[:3] == b"\xff\xd8\xff"
        page = client.get(media["page_url"]).text
    assert 'id="media-cover"' in page and "The Owls" in page


def test_a_cover_too_large_to_decode_costs_the_song_its_picture_only(
    processed: Processed,
) -> None:
    media = processed["big_cover_mp3"]
    assert media["processing"]["state"] == "done", media["processing"]
    assert media["duration"] and media["tags"]["artist"] == "The Giants"
    assert media["thumbnail_url"] is None and media["playback"]["plan"] == "original"


def test_mp4_and_flac_cover_art_become_thumbnails_too(
    playback_server: LiveServer, processed: Processed
) -> None:
    for name in ("song_m4a", "song_flac"):
        media = processed[name]
        assert media["kind"] == "audio" and media["processing"]["state"] == "done", media
        assert media["tags"]["artist"] == "The Larks"
        with playback_server.client() as client:
            assert client.get(media["thumbnail_url"]).content[:3] == b"\xff\xd8\xff"


def test_image_pages_show_image_facts_and_a_scaled_copy(
    playback_server: LiveServer, processed: Processed, tmp_path: Path
) -> None:
    photo = processed["photo_jpg"]
    assert (photo["camera"], photo["taken_at"]) == ("Canon EOS 80D", "2019-07-14 15:02:11")
    wide = processed["wide_png"]
    poster = _fetch(playback_server, wide["poster_url"], tmp_path / "poster.jpg")
    width = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "stream=width", "-of", "csv=p=0", str(poster)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert int(width) == 2048
    with playback_server.client() as client:
        page = client.get(wide["page_url"]).text
    assert f'src="{wide["poster_url"]}"' in page
    assert 'id="media-video-codec"' not in page and "Video codec" not in page
    assert re.search(r'id="media-image-format">PNG<', page)
    assert "3000 × 200" in page


def test_without_transcoding_the_page_names_the_setting_that_would_help(
    plain_server: LiveServer, playback_samples: PlaybackSamples
) -> None:
    iphone = upload_file(plain_server, playback_samples.iphone_mov)
    phone = upload_file(plain_server, playback_samples.hevc_mkv)
    iphone = wait_for_processing(plain_server, iphone["id"])
    phone = wait_for_processing(plain_server, phone["id"])
    assert [s["url"] for s in iphone["sources"]] == [iphone["stream_url"]]
    assert iphone["playback_url"] == iphone["stream_url"]
    with plain_server.client() as client:
        page = client.get(iphone["page_url"]).text
        assert 'id="original-only-note"' in page and "STREAMPORT_TRANSCODE=1" in page
        assert 'id="media-player"' in page  # Safari still plays it
        page = client.get(phone["page_url"]).text
        assert 'id="unplayable-notice"' in page and "STREAMPORT_TRANSCODE=1" in page


def test_verify_checks_renditions_and_deleting_removes_them(
    playback_server: LiveServer,
    processed: Processed,  # made first: the objects counted here are this test's alone
    playback_samples: PlaybackSamples,
    tmp_path: Path,
) -> None:
    server = playback_server
    objects = server.settings.media_dir / "objects"
    before = {p for p in objects.rglob("*") if p.is_file()}
    media = wait_for_processing(server, upload_file(server, playback_samples.small_mp4)["id"])
    assert media["hls_url"], media
    made = {p for p in objects.rglob("*") if p.is_file()} - before
    assert len(made) == 4  # original, poster, thumbnail, one rendition
    result = run_cli(server.settings, tmp_path, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    with server.client() as client:
        master = client.get(media["hls_url"]).text
        (uri,) = re.findall(r"^360\.m3u8\?.*$", master, re.MULTILINE)
        playlist = client.get(f"{media['hls_url'].rpartition('/')[0]}/{uri}").text
    (key,) = set(re.findall(r"^360\.mp4\?v=(\w+)", playlist, re.MULTILINE))
    (rendition,) = [p for p in made if p.name.startswith(key)]
    rendition.unlink()
    result = run_cli(server.settings, tmp_path, "verify")
    assert result.returncode == 1
    assert "rendition" in result.stdout and "missing" in result.stdout, result.stdout
    with server.client() as client:
        assert client.delete(f"/api/media/{media['id']}").status_code == 204
    assert {p for p in objects.rglob("*") if p.is_file()} <= before


def test_hls_files_are_not_reachable_once_the_media_is_gone(
    playback_server: LiveServer, playback_samples: PlaybackSamples
) -> None:
    # Served from the facts cache for a moment; afterwards nothing answers for it.
    media = upload_file(playback_server, playback_samples.small_mp4)
    with playback_server.client() as client:
        assert client.delete(f"/api/media/{media['id']}").status_code == 204
        assert client.get(f"/media/{media['id']}/hls/master.m3u8").status_code == 404
