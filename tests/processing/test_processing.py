"""Processing after upload, against real servers and real ffmpeg: probe, posters, transcode,
live progress, restarts, failures, and a machine without ffmpeg."""

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psutil
import pytest

from app.config import Settings
from tests.conftest import (
    FINAL_STATES,
    LiveServer,
    start_server,
    upload_file,
    wait_for_processing,
)
from tests.media_samples import (
    FFPROBE,
    Samples,
    make_hevc_mkv,
    moov_before_mdat,
    probe_duration,
    truncate,
)

FINAL = FINAL_STATES


def _image_size(data: bytes, tmp_path: Path) -> tuple[int, int]:
    image = tmp_path / "image.jpg"
    image.write_bytes(data)
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,codec_name", "-of", "json", str(image)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    stream = json.loads(out)["streams"][0]
    assert stream["codec_name"] == "mjpeg"
    return stream["width"], stream["height"]


@pytest.fixture(scope="module")
def processing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("processing")
    settings = Settings(_env_file=None, media_dir=root / "media", max_upload_bytes=2**31)
    server = start_server(settings, root / "server.log")
    yield server
    server.stop()


def test_moov_at_end_mp4_is_probed_and_postered_and_its_bytes_kept(
    processing_server: LiveServer, samples: Samples, tmp_path: Path
) -> None:
    uploaded = upload_file(processing_server, samples.mp4_moov_at_end)
    media = wait_for_processing(processing_server, uploaded["id"], FINAL)
    assert media["processing"]["state"] == "done", media["processing"]
    assert abs(media["duration"] - Samples.VIDEO_SECONDS) < 0.5
    assert (media["width"], media["height"]) == (1280, 720)
    assert (media["video_codec"], media["audio_codec"]) == ("h264", "aac")
    assert media["bitrate"] > 0 and media["playable"] is True
    with processing_server.client() as client:
        poster = client.get(media["poster_url"])
        thumbnail = client.get(media["thumbnail_url"])
        assert poster.status_code == thumbnail.status_code == 200
        assert poster.headers["content-type"] == "image/jpeg"
        # Private (the default): no shared cache keeps it; public ones are immutable
        # (tests/accounts/test_access_matrix.py).
        assert poster.headers["cache-control"] == "private, no-cache"
        assert _image_size(poster.content, tmp_path) == (1280, 720)
        assert _image_size(thumbnail.content, tmp_path) == (480, 270)
        downloaded = tmp_path / "downloaded.mp4"
        downloaded.write_bytes(client.get(media["download_url"]).content)
    # The original is never rewritten: browsers read its index at the end with a Range request.
    assert not moov_before_mdat(downloaded)
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == media["sha256"]
    assert media["sha256"] == uploaded["sha256"]
    assert abs(probe_duration(str(downloaded)) - Samples.VIDEO_SECONDS) < 0.5


def test_faststart_mp4_keeps_its_bytes(processing_server: LiveServer, samples: Samples) -> None:
    uploaded = upload_file(processing_server, samples.mp4_faststart)
    media = wait_for_processing(processing_server, uploaded["id"], FINAL)
    assert media["processing"]["state"] == "done"
    assert media["sha256"] == uploaded["sha256"]
    assert media["poster_url"] is not None


def test_webm_audio_and_image(
    processing_server: LiveServer, samples: Samples, tmp_path: Path
) -> None:
    webm = wait_for_processing(
        processing_server, upload_file(processing_server, samples.webm)["id"], FINAL
    )
    assert (webm["video_codec"], webm["audio_codec"], webm["playable"]) == ("vp9", "opus", True)
    assert webm["poster_url"] is not None
    mp3 = wait_for_processing(
        processing_server, upload_file(processing_server, samples.mp3)["id"], FINAL
    )
    assert mp3["processing"]["state"] == "done"
    assert (mp3["video_codec"], mp3["audio_codec"]) == (None, "mp3")
    assert abs(mp3["duration"] - 8) < 0.5
    assert mp3["poster_url"] is None and mp3["thumbnail_url"] is None
    png = wait_for_processing(
        processing_server, upload_file(processing_server, samples.png)["id"], FINAL
    )
    assert png["processing"]["state"] == "done"
    with processing_server.client() as client:
        thumbnail = client.get(png["thumbnail_url"]).content
    assert _image_size(thumbnail, tmp_path) == (480, 360)


def test_plain_file_is_skipped(processing_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "notes.bin"
    path.write_bytes(os.urandom(4096))
    media = wait_for_processing(
        processing_server, upload_file(processing_server, path)["id"], FINAL
    )
    assert media["processing"]["state"] == "skipped"
    assert "not a video" in media["processing"]["error"]


def test_truncated_mp4_fails_with_a_reason_and_still_downloads(
    processing_server: LiveServer, samples: Samples, tmp_path: Path
) -> None:
    broken = truncate(samples.mp4_moov_at_end, tmp_path / "broken.mp4", 0.4)
    uploaded = upload_file(processing_server, broken)
    media = wait_for_processing(processing_server, uploaded["id"], FINAL)
    assert media["processing"]["state"] == "failed"
    assert media["processing"]["error"]
    with processing_server.client() as client:
        body = client.get(media["download_url"]).content
        page = client.get(media["page_url"])
    assert hashlib.sha256(body).hexdigest() == uploaded["sha256"] == media["sha256"]
    assert page.status_code == 200


def _read_events(
    server: LiveServer, path: str, events: list[dict[str, Any]], seconds: float
) -> None:
    url = server.base_url + path
    with httpx2.stream("GET", url, headers=server.auth_headers, timeout=seconds) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))


def test_sse_reports_progress_then_done_while_transcoding(samples: Samples, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, media_dir=tmp_path / "media", transcode=True)
    server = start_server(settings, tmp_path / "server.log")
    try:
        hevc = make_hevc_mkv(tmp_path / "phone video.mkv", seconds=30)
        uploaded = upload_file(server, hevc)
        events: list[dict[str, Any]] = []
        _read_events(server, uploaded["events_url"], events, 120)
        media = wait_for_processing(server, uploaded["id"], FINAL)
        with server.client() as client:
            rendition = client.get(media["playback_url"])
    finally:
        server.stop()
    states = [event["state"] for event in events]
    assert states[-1] == "done"
    assert any(
        e["state"] == "running" and e["step"] == "transcode" and 0 < e["progress"] < 1
        for e in events
    ), events
    progress = [e["progress"] for e in events if e["step"] == "transcode"]
    assert progress == sorted(progress)
    assert media["playable"] is False and media["video_codec"] == "hevc"
    assert media["playback_url"] != media["stream_url"]
    assert rendition.status_code == 200 and rendition.headers["content-type"] == "video/mp4"
    rendition_path = tmp_path / "rendition.mp4"
    rendition_path.write_bytes(rendition.content)
    codecs = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
         str(rendition_path)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert codecs == ["h264", "aac"]
    assert moov_before_mdat(rendition_path)


def test_a_job_interrupted_by_a_killed_server_completes_after_restart(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, media_dir=tmp_path / "media", transcode=True)
    hevc = make_hevc_mkv(tmp_path / "long.mkv", seconds=60)
    first = start_server(settings, tmp_path / "first.log")
    try:
        uploaded = upload_file(first, hevc)
        running = wait_for_processing(first, uploaded["id"], {"running"} | FINAL, 60)
        deadline = time.monotonic() + 60
        while running["processing"]["step"] != "transcode" and time.monotonic() < deadline:
            running = wait_for_processing(first, uploaded["id"], {"running"} | FINAL, 60)
            time.sleep(0.1)
        assert running["processing"]["state"] == "running", running["processing"]
        first.stop(signal.SIGKILL)
    finally:
        first.stop()
    second = start_server(settings, tmp_path / "second.log")
    try:
        media = wait_for_processing(second, uploaded["id"], FINAL, 180)
        assert media["processing"]["state"] == "done", media["processing"]
        assert media["playback_url"] != media["stream_url"]
    finally:
        second.stop()
    assert "Requeued 1 interrupted processing job" in (tmp_path / "second.log").read_text()
    partials = list((settings.media_dir / ".partial").iterdir())
    assert partials == []


def test_without_ffmpeg_the_portal_works_and_jobs_are_skipped(
    samples: Samples, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, media_dir=tmp_path / "media")
    server = start_server(settings, tmp_path / "server.log", extra_env={"PATH": str(tmp_path)})
    try:
        uploaded = upload_file(server, samples.mp4_faststart)
        media = wait_for_processing(server, uploaded["id"], FINAL)
        with server.client() as client:
            ranged = client.get(media["stream_url"], headers={"Range": "bytes=0-99"})
            page = client.get(media["page_url"])
    finally:
        server.stop()
    assert media["processing"]["state"] == "skipped"
    assert "ffmpeg" in media["processing"]["error"]
    assert ranged.status_code == 206 and len(ranged.content) == 100
    assert page.status_code == 200
    log = (tmp_path / "server.log").read_text()
    assert log.count("ffmpeg/ffprobe not found") == 1


def test_deleting_a_media_removes_its_derived_files(
    processing_server: LiveServer, samples: Samples
) -> None:
    uploaded = upload_file(processing_server, samples.mp4_faststart)
    media = wait_for_processing(processing_server, uploaded["id"], FINAL)
    with processing_server.client() as client:
        assert client.get(media["poster_url"]).status_code == 200
        before = _stored(processing_server)
        assert client.delete(f"/api/media/{media['id']}").status_code == 204
        assert client.get(media["poster_url"]).status_code == 404
    assert len(before) - len(_stored(processing_server)) == 3  # bytes, poster, thumbnail


def _stored(server: LiveServer) -> list[Path]:
    return [p for p in (server.settings.media_dir / "objects").rglob("*") if p.is_file()]


def test_two_worker_processes_share_the_queue_and_never_run_a_job_twice(
    settings: Settings, samples: Samples, tmp_path: Path
) -> None:
    # On SQLite and on PostgreSQL (the settings fixture runs both).
    roomy = settings.model_copy(update={"max_upload_bytes": 2**30})
    server = start_server(roomy, tmp_path / "server.log", workers=2)
    try:
        children = psutil.Process(server.process.pid).children()
        workers = [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]
        assert len(workers) == 2
        uploaded = [upload_file(server, samples.mp4_moov_at_end) for _ in range(6)]
        finished = [wait_for_processing(server, media["id"]) for media in uploaded]
    finally:
        server.stop()
    assert {media["processing"]["state"] for media in finished} == {"done"}
    log = (tmp_path / "server.log").read_text()
    ran = re.findall(r"job (\d+) \(media \w+\): done", log)
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 6, ran
