"""Adaptive streaming with the bytes in S3 (moto) and the catalog in PostgreSQL: renditions are
objects of their own, segments are ranged GETs of them, and deleting takes them along."""

import subprocess
from pathlib import Path

from tests.conftest import s3_settings, start_server, upload_file, wait_for_processing
from tests.media_samples import FFPROBE
from tests.playback.samples import PlaybackSamples
from tests.postgres_server import PostgresServer
from tests.s3_server import S3Server, bucket_contents


def test_renditions_live_in_the_bucket_and_segments_are_ranged_gets(
    s3: S3Server, postgres: PostgresServer, playback_samples: PlaybackSamples, tmp_path: Path
) -> None:
    settings = s3_settings(s3, postgres, tmp_path / "media", hls_ladder="360", hls_min_bitrate=0)
    server = start_server(settings, tmp_path / "server.log")
    try:
        empty = bucket_contents(s3.endpoint_url, settings.s3_bucket or "")
        media = upload_file(server, playback_samples.small_mp4)
        media = wait_for_processing(server, media["id"])
        assert media["processing"]["state"] == "done", media["processing"]
        assert media["hls_url"]
        objects = set(bucket_contents(s3.endpoint_url, settings.s3_bucket or "")) - set(empty)
        assert len(objects) == 4  # original, poster, thumbnail, the 360p rendition
        log_mark = len(s3.requests_for(f"/{settings.s3_bucket}/"))
        result = subprocess.run(
            [FFPROBE, "-v", "error", "-headers", f"Authorization: Bearer {server.token}\r\n",
             "-show_entries", "stream=codec_name,height", "-of", "csv=p=0",
             server.base_url + media["hls_url"]],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert {"h264,360", "aac"} <= set(result.stdout.split())
        gets = [
            line
            for line in s3.requests_for(f"/{settings.s3_bucket}/")[log_mark:]
            if '"GET ' in line
        ]
        # Every segment read from the bucket was a range of the rendition object (206), never
        # the whole object copied first.
        assert gets and all('" 206 ' in line for line in gets), gets
        with server.client() as client:
            assert client.delete(f"/api/media/{media['id']}").status_code == 204
        assert bucket_contents(s3.endpoint_url, settings.s3_bucket or "") == empty
    finally:
        server.stop()
