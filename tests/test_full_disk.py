"""A small real disk (tmpfs) filled up, under a real ``streamport serve``: uploads stop short of
the reserve, and with the disk full to the last byte, renaming and deleting still work."""

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.conftest import (
    LiveServer,
    start_server,
    stored_files,
    upload_file,
    wait_for_processing,
)
from tests.media_samples import FFMPEG
from tests.raw_uploads import MIB, part_head, part_tail, read_response, request_head, wait_for

DISK_BYTES = 96 * MIB
RESERVE_BYTES = 16 * MIB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


@pytest.fixture
def server(small_disk: Path, tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(
        _env_file=None,
        media_dir=small_disk / "media",
        max_upload_bytes=256 * MIB,
        min_free_bytes=RESERVE_BYTES,
        processing_concurrency=0,
    )
    live = start_server(settings, tmp_path / "server.log")
    yield live
    live.stop()


def _free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def test_a_declared_upload_past_the_reserve_is_refused_before_it_is_read(
    server: LiveServer,
) -> None:
    media_dir = server.settings.media_dir
    declared = _free(media_dir) - RESERVE_BYTES + MIB
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_head(server.port, declared, server.token) + part_head("big.bin"))
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 507 "), answer[:200]
    assert b"keeps" in answer
    assert stored_files(server.settings) == []


def test_a_streamed_upload_stops_at_the_reserve_and_leaves_nothing(server: LiveServer) -> None:
    media_dir = server.settings.media_dir
    chunk = os.urandom(MIB)

    def body() -> Iterator[bytes]:  # chunked: no length to refuse early
        yield part_head("big.bin")
        for _ in range(DISK_BYTES // MIB):
            yield chunk
        yield part_tail()

    with server.client() as client:
        response = client.post(
            "/api/media",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=streamporttestboundary"},
        )
    assert response.status_code == 507, response.text
    assert wait_for(lambda: stored_files(server.settings) == [])
    assert _free(media_dir) > RESERVE_BYTES
    with server.client() as client:
        assert client.post("/api/media", files={"file": ("ok.bin", b"fits")}).status_code == 201


def test_with_the_disk_full_rename_and_delete_still_work(server: LiveServer) -> None:
    media_dir = server.settings.media_dir
    with server.client() as client:
        kept, doomed = (
            client.post("/api/media", files={"file": (name, os.urandom(8 * MIB))}).json()["items"][
                0
            ]
            for name in ("kept.bin", "doomed.bin")
        )
    # Another program fills the disk to the last byte.
    filler = media_dir.parent / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * MIB)
                out.flush()
        except OSError:
            pass
    try:
        os.truncate(filler, filler.stat().st_size)  # whatever the buffer held is gone
        assert _free(media_dir) < MIB
        with server.client() as client:
            renamed = client.patch(f"/api/media/{kept['id']}", json={"title": "Still here"})
            assert renamed.status_code == 200, renamed.text
            assert renamed.json()["title"] == "Still here"
            form = client.post(f"/media/{kept['id']}/rename", data={"title": "Again"})
            assert form.status_code == 303, form.text
            deleted = client.delete(f"/api/media/{doomed['id']}")
            assert deleted.status_code == 204, deleted.text
            assert client.get(f"/api/media/{doomed['id']}").status_code == 404
            assert client.get(f"/api/media/{kept['id']}").json()["title"] == "Again"
            assert client.get("/").status_code == 200
            # Uploads, though, are refused while the disk has no room: 507, not 500.
            refused = client.post("/api/media", files={"file": ("x.bin", os.urandom(MIB))})
            assert refused.status_code == 507, refused.text
    finally:
        filler.unlink()
    assert _free(media_dir) > 8 * MIB


def test_a_transcode_stops_short_of_the_reserve(small_disk: Path, tmp_path: Path) -> None:
    source = tmp_path / "noise.mkv"  # noise: its H.264 copy is far larger than 20 MiB
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
         "nullsrc=s=640x360:r=25:d=12,geq=random(1)*255:128:128", "-c:v", "libx265",
         "-preset", "ultrafast", "-x265-params", "log-level=error:crf=40", str(source)],
        check=True,
    )  # fmt: skip
    settings = Settings(
        _env_file=None,
        media_dir=small_disk / "media",
        max_upload_bytes=256 * MIB,
        min_free_bytes=RESERVE_BYTES,
        transcode=True,
    )
    live = start_server(settings, tmp_path / "server.log")
    filler = small_disk / "filler"
    try:
        # Leave 20 MiB above the reserve, once the upload is in.
        room_after_upload = _free(small_disk) - source.stat().st_size - RESERVE_BYTES
        with filler.open("wb") as out:
            out.truncate(0)
            os.posix_fallocate(out.fileno(), 0, room_after_upload - 20 * MIB)
        media = wait_for_processing(live, upload_file(live, source)["id"])
        assert media["processing"]["state"] == "failed", media["processing"]
        assert "disk space kept free" in media["processing"]["error"]
        assert media["playback_url"] == media["stream_url"]
        assert _free(small_disk) > RESERVE_BYTES
        assert list((settings.media_dir / ".partial").glob("*.part")) == []
    finally:
        live.stop()
        filler.unlink(missing_ok=True)
