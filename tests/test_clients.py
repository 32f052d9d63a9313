"""Real clients against a real server: ffprobe/ffmpeg, aria2c, curl resume, Safari's probe."""

import hashlib
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.media_samples import FFMPEG, Samples, moov_before_mdat, probe_duration


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def test_samples_are_what_the_tests_claim(samples: Samples) -> None:
    assert not moov_before_mdat(samples.mp4_moov_at_end)
    assert moov_before_mdat(samples.mp4_faststart)
    assert abs(probe_duration(str(samples.mp4_moov_at_end)) - Samples.VIDEO_SECONDS) < 0.5


@pytest.mark.parametrize("name", ["mp4_moov_at_end", "mp4_faststart", "webm"])
def test_ffprobe_reads_duration_over_http(
    shared_server: LiveServer, sample_media: dict[str, dict[str, Any]], name: str
) -> None:
    url = shared_server.base_url + sample_media[name]["stream_url"]
    assert abs(probe_duration(url) - Samples.VIDEO_SECONDS) < 0.5


@pytest.mark.parametrize("name", ["mp4_moov_at_end", "webm"])
def test_ffmpeg_seeks_with_range_and_yields_a_frame(
    shared_server: LiveServer, sample_media: dict[str, dict[str, Any]], name: str, tmp_path: Path
) -> None:
    url = shared_server.base_url + sample_media[name]["stream_url"]
    frame = tmp_path / "frame.png"
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-ss", "25", "-i", url,
         "-frames:v", "1", str(frame)],
        check=True,
        timeout=120,
    )  # fmt: skip
    assert frame.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = shared_server.log_path.read_text()
    assert f'"GET {sample_media[name]["stream_url"]} HTTP/1.1" 206' in log


def test_aria2c_segmented_download_matches_the_catalog(
    shared_server: LiveServer, sample_media: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    media = sample_media["random_file"]
    url = shared_server.base_url + media["download_url"]
    subprocess.run(
        ["aria2c", "-q", "-x8", "-s8", "-k1M", "--allow-overwrite=true",
         "--auto-file-renaming=false", "-d", str(tmp_path), "-o", "fetched.bin", url],
        check=True,
        timeout=300,
    )  # fmt: skip
    assert _sha256(tmp_path / "fetched.bin") == media["sha256"]


def test_curl_resumes_a_killed_download(
    shared_server: LiveServer, sample_media: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    media = sample_media["random_file"]
    url = shared_server.base_url + media["download_url"]
    target = tmp_path / "resumed.bin"
    first = subprocess.Popen(["curl", "-s", "--limit-rate", "20M", "-o", str(target), url])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not target.exists() or target.stat().st_size < 2**20):
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    partial_size = target.stat().st_size
    assert 0 < partial_size < media["size"]
    subprocess.run(["curl", "-s", "-f", "-C", "-", "-o", str(target), url], check=True, timeout=300)
    assert target.stat().st_size == media["size"]
    assert _sha256(target) == media["sha256"]


def test_safari_probe_gets_exactly_two_bytes(
    shared_server: LiveServer, sample_media: dict[str, dict[str, Any]], samples: Samples
) -> None:
    media = sample_media["mp4_moov_at_end"]
    result = subprocess.run(
        ["curl", "-s", "-D", "-", "-H", "Range: bytes=0-1", "-o", "-",
         shared_server.base_url + media["stream_url"]],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206")
    assert f"content-range: bytes 0-1/{media['size']}".encode() in head.lower()
    with samples.mp4_moov_at_end.open("rb") as original:
        assert body == original.read(2)
