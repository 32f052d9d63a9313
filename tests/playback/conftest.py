"""Servers and media for the playback tests: each sample is uploaded and processed once."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from tests.conftest import FINAL_STATES, LiveServer, start_server, upload_file
from tests.playback.samples import PlaybackSamples, make_playback_samples
from tests.test_browser import browser  # noqa: F401 - the module-scoped Chromium


@pytest.fixture(scope="session")
def playback_samples(tmp_path_factory: pytest.TempPathFactory) -> PlaybackSamples:
    return make_playback_samples(tmp_path_factory.mktemp("playback-samples"))


@pytest.fixture(scope="session")
def playback_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Defaults, except a two-step ladder for every video (the 720p clip gets 720p and 360p,
    a 360p clip 360p, the 240p clips none, being below both rungs), and a pixel limit just
    above 720p's."""
    root = tmp_path_factory.mktemp("playback-server")
    settings = Settings(
        _env_file=None,
        media_dir=root / "media",
        hls_ladder="720,360",
        hls_min_bitrate=0,
        processing_max_pixels=1_000_000,
    )
    server = start_server(settings, root / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Transcoding turned off (and no HLS, which would play any video)."""
    root = tmp_path_factory.mktemp("plain-server")
    settings = Settings(_env_file=None, media_dir=root / "media", transcode=False)
    server = start_server(settings, root / "server.log")
    yield server
    server.stop()


class Processed(dict[str, dict[str, Any]]):
    """Sample name → its Media once processed; ``steps`` has the (step, progress) pairs
    seen while the 720p clip was processed."""

    steps: list[tuple[str | None, float]]


@pytest.fixture(scope="session")
def processed(playback_server: LiveServer, playback_samples: PlaybackSamples) -> Processed:
    """Every sample uploaded at once, then followed until processed."""
    names = (
        "obs_mkv", "iphone_mov", "ac3_mkv", "clip_720p", "portrait_mp4", "song_mp3",
        "big_cover_mp3", "song_m4a", "song_flac", "photo_jpg", "wide_png",
    )  # fmt: skip
    uploaded = {
        name: upload_file(playback_server, getattr(playback_samples, name)) for name in names
    }
    result = Processed()
    result.steps = []
    deadline = time.monotonic() + 300
    with playback_server.client() as client:
        while len(result) < len(names):
            assert time.monotonic() < deadline, "processing took too long"
            for name, media in uploaded.items():
                if name in result:
                    continue
                current = client.get(f"/api/media/{media['id']}").json()
                if name == "clip_720p" and current["processing"]["state"] == "running":
                    job = current["processing"]
                    result.steps.append((job["step"], job["progress"]))
                if current["processing"]["state"] in FINAL_STATES:
                    result[name] = current
            time.sleep(0.1)
    return result


def media_path(server: LiveServer, key_fragment: str) -> Path:
    """A stored object's file (local storage)."""
    (path,) = (server.settings.media_dir / "objects").rglob(f"*{key_fragment}*")
    return path
