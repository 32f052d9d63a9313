"""Files built to abuse ffmpeg, against a real ``streamport serve`` and real ffmpeg: playlists
that point elsewhere on the disk, endless live playlists, huge pictures, slow and greedy
decodes. Each is refused or contained with a plain reason, and the next upload still runs."""

import hashlib
import json
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from tests.conftest import FINAL_STATES, LiveServer, start_server, upload_file, wait_for_processing
from tests.media_samples import FFMPEG, FFPROBE, Samples, make_hevc_mkv, moov_before_mdat


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("hostile-files")
    settings = Settings(_env_file=None, media_dir=root / "media", max_upload_bytes=2**30)
    live = start_server(settings, root / "server.log")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def private_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video elsewhere on the server's disk, which nobody uploaded."""
    path = tmp_path_factory.mktemp("private") / "private.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=7",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def _upload_bytes(server: LiveServer, name: str, data: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / name
    path.write_bytes(data)
    return upload_file(server, path)


def _assert_nothing_read(media: dict[str, Any]) -> None:
    assert media["processing"]["state"] == "skipped", media["processing"]
    assert "playlists" in media["processing"]["error"]
    assert media["duration"] is None
    assert media["poster_url"] is None and media["thumbnail_url"] is None


def test_an_hls_playlist_never_reads_another_file(
    server: LiveServer, private_video: Path, tmp_path: Path
) -> None:
    playlist = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
        f"#EXTINF:7.0,\n{private_video}\n#EXT-X-ENDLIST\n"
    ).encode()
    uploaded = _upload_bytes(server, "holiday.mp4", playlist, tmp_path)
    assert uploaded["kind"] == "video"  # by its name: it does look like one
    _assert_nothing_read(wait_for_processing(server, uploaded["id"]))


def test_a_dash_manifest_never_reads_another_file(
    server: LiveServer, private_video: Path, tmp_path: Path
) -> None:
    manifest = f"""<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT7S"
     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
 <Period duration="PT7S"><AdaptationSet mimeType="video/mp4">
  <Representation id="1" bandwidth="100000" width="320" height="240">
   <BaseURL>{private_video}</BaseURL>
  </Representation></AdaptationSet></Period></MPD>
""".encode()
    uploaded = _upload_bytes(server, "movie.mp4", manifest, tmp_path)
    _assert_nothing_read(wait_for_processing(server, uploaded["id"]))


def test_an_endless_live_playlist_does_not_hold_up_the_queue(
    server: LiveServer, samples: Samples, tmp_path: Path
) -> None:
    # A live playlist (no #EXT-X-ENDLIST) whose segment is any .ts file on the server: ffmpeg
    # would reload it for ever, waiting for the next segment.
    segment = tmp_path / "any.ts"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=64x64:r=1:d=1", "-c:v", "libx264",
        "-preset", "ultrafast", "-f", "mpegts", str(segment),
    )  # fmt: skip
    live = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1,\n{segment}\n"
    uploaded = _upload_bytes(server, "live.mp4", live.encode(), tmp_path)
    following = upload_file(server, samples.mp3)
    _assert_nothing_read(wait_for_processing(server, uploaded["id"], seconds=30))
    assert wait_for_processing(server, following["id"], seconds=30)["processing"]["state"] == "done"


def _solid_png(path: Path, width: int, height: int, rgb: bytes) -> Path:
    """A PNG of one colour, written directly: ffmpeg's encoder took 8 s of CPU over a
    frame of this size that it first had to fill, zlib at level 1 needs 2 s."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = (b"\x00" + rgb * width) * 100  # filter type 0 ("none"), then the pixels
    deflate = zlib.compressobj(1)
    pixels = b"".join(deflate.compress(rows) for _ in range(height // 100))
    pixels += deflate.compress((b"\x00" + rgb * width) * (height % 100)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


def test_a_huge_picture_is_refused_before_it_is_decoded(server: LiveServer, tmp_path: Path) -> None:
    # 16000×16000: 3.4 MB on disk, 768 MB decoded.
    huge = _solid_png(tmp_path / "poster.png", 16000, 16000, b"\xff\x00\x00")
    media = wait_for_processing(server, upload_file(server, huge)["id"])
    assert media["processing"]["state"] == "skipped", media["processing"]
    assert "16,000×16,000 pixels" in media["processing"]["error"]
    assert media["thumbnail_url"] is None


def test_a_video_of_huge_frames_is_refused_before_it_is_decoded(
    server: LiveServer, tmp_path: Path
) -> None:
    video = tmp_path / "frames.mkv"  # a few hundred KB of 144-megapixel frames
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=blue:s=16000x9000:rate=1:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", str(video),
    )  # fmt: skip
    media = wait_for_processing(server, upload_file(server, video)["id"])
    assert media["processing"]["state"] == "skipped", media["processing"]
    assert "16,000×9,000 pixels" in media["processing"]["error"]


def test_a_decode_over_the_memory_limit_fails_and_the_next_job_runs(
    samples: Samples, tmp_path: Path
) -> None:
    video = tmp_path / "big-frames.mkv"  # 25-megapixel frames: about 1.5 GB for the poster
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=6000x4000:rate=2:duration=3",
        "-c:v", "libx264", "-preset", "ultrafast", str(video),
    )  # fmt: skip
    settings = Settings(
        _env_file=None, media_dir=tmp_path / "media", processing_memory_bytes=400 * 2**20
    )
    live = start_server(settings, tmp_path / "server.log")
    try:
        greedy = upload_file(live, video)
        following = upload_file(live, samples.mp3)
        media = wait_for_processing(live, greedy["id"])
        assert media["processing"]["state"] == "failed", media["processing"]
        assert "memory limit of 400 MiB" in media["processing"]["error"]
        assert wait_for_processing(live, following["id"])["processing"]["state"] == "done"
    finally:
        live.stop()


def test_a_transcode_over_its_time_limit_fails_and_the_next_job_runs(
    samples: Samples, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        media_dir=tmp_path / "media",
        transcode=True,
        transcode_timeout_factor=0.02,  # a second for a minute of video
    )
    hevc = make_hevc_mkv(tmp_path / "slow.mkv", seconds=30)
    live = start_server(settings, tmp_path / "server.log")
    try:
        slow = upload_file(live, hevc)
        following = upload_file(live, samples.mp3)
        media = wait_for_processing(live, slow["id"])
        assert media["processing"]["state"] == "failed", media["processing"]
        assert "took longer than its limit" in media["processing"]["error"]
        assert media["poster_url"] is not None  # what came before the transcode is kept
        assert wait_for_processing(live, following["id"])["processing"]["state"] == "done"
    finally:
        live.stop()
    assert list((settings.media_dir / ".partial").glob("*.part")) == []


def test_a_failed_job_shows_no_server_paths(server: LiveServer, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00" + b"\x00garbage" * 100)
    media = wait_for_processing(server, upload_file(server, broken)["id"])
    assert media["processing"]["state"] == "failed", media["processing"]
    error = media["processing"]["error"]
    media_dir = str(server.settings.media_dir)
    assert "/" not in error.replace("N/A", "") and "objects" not in error, error
    with server.client() as client:
        page = client.get(media["page_url"]).text
    assert media_dir not in page and str(server.settings.media_dir.parent) not in page
    # The operator still sees the whole story in the log.
    assert media_dir in server.log_path.read_text()


def test_a_video_shorter_than_its_audio_still_gets_a_poster(
    server: LiveServer, tmp_path: Path
) -> None:
    # The duration (20 s) comes from the audio; 10 % in, there is no video frame left.
    clip = tmp_path / "short-video.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=20",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        str(clip),
    )  # fmt: skip
    media = wait_for_processing(server, upload_file(server, clip)["id"])
    assert media["processing"]["state"] == "done", media["processing"]
    with server.client() as client:
        poster = client.get(media["poster_url"])
        thumbnail = client.get(media["thumbnail_url"])
    assert poster.status_code == thumbnail.status_code == 200
    assert len(poster.content) > 1000 and poster.content.startswith(b"\xff\xd8")
    assert len(thumbnail.content) > 500


def test_an_iphone_mov_downloads_byte_identical_after_processing(
    server: LiveServer, tmp_path: Path
) -> None:
    mov = tmp_path / "IMG_0042.MOV"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=6",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-metadata", "location=+48.8584+002.2945/", "-metadata", "make=Apple",
        "-metadata", "model=iPhone 15 Pro", "-metadata", "creation_time=2026-07-14T18:30:00Z",
        "-f", "mov", str(mov),
    )  # fmt: skip
    assert not moov_before_mdat(mov)  # as phones write it: the index at the end
    sent = hashlib.sha256(mov.read_bytes()).hexdigest()
    uploaded = upload_file(server, mov)
    media = wait_for_processing(server, uploaded["id"], FINAL_STATES)
    assert media["processing"]["state"] == "done", media["processing"]
    assert uploaded["sha256"] == media["sha256"] == sent
    downloaded = tmp_path / "downloaded.mov"
    with server.client() as client:
        downloaded.write_bytes(client.get(media["download_url"]).content)
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == sent
    tags = json.loads(
        subprocess.run(
            [FFPROBE, "-v", "error", "-show_entries", "format_tags", "-of", "json",
             str(downloaded)],
            check=True, capture_output=True, text=True,
        ).stdout
    )["format"]["tags"]  # fmt: skip
    described = json.dumps(tags)
    assert "+48.8584+002.2945/" in described and "iPhone 15 Pro" in described, described


def test_a_tiny_video_claiming_eleven_days_does_not_hold_up_the_queue(
    samples: Samples, tmp_path: Path
) -> None:
    # 20 frames at 25 fps, 50,000 s apart: 25 KB that a transcode would fill with 24 million
    # copies of frames.
    gaps = tmp_path / "gaps.mkv"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=64x64:r=25:d=0.8", "-vf", "setpts=N*50000/TB",
        "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
        "-r", "25", str(gaps),
    )  # fmt: skip
    settings = Settings(_env_file=None, media_dir=tmp_path / "media", transcode=True)
    live = start_server(settings, tmp_path / "server.log")
    try:
        hostile = upload_file(live, gaps)
        following = upload_file(live, samples.mp3)
        media = wait_for_processing(live, hostile["id"], seconds=60)
        assert media["processing"]["state"] in ("done", "failed"), media["processing"]
        assert (
            wait_for_processing(live, following["id"], seconds=30)["processing"]["state"] == "done"
        )
    finally:
        live.stop()
