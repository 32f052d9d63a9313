"""Against a real ``streamport serve``: big files, cut-off uploads, a killed server. The tests
that need no server of their own share one per backend, and look only at what they add."""

import hashlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psutil

from app.config import Settings
from tests.conftest import LiveServer, start_server, stored_files
from tests.raw_uploads import CONTENT_TYPE, part_head, part_tail, request_head, wait_for


def _descriptors(process: psutil.Process, port: int) -> int:
    """Open files and client sockets, leaving out the catalog's connections: the pool (and
    the background worker) may open another one at any time."""
    files = [f for f in process.open_files() if "streamport.db" not in f.path]
    clients = [c for c in process.net_connections() if c.laddr and c.laddr.port == port]
    return len(files) + len(clients)


def _catalog_total(server: LiveServer) -> int:
    with server.client() as client:
        return client.get("/api/media").json()["total"]


def _partials(settings: Settings) -> list[Path]:
    return list((settings.media_dir / ".partial").glob("*"))


def _writing(settings: Settings) -> bool:
    """Whether an upload is under way: its partial file (local storage) or the marker of its
    S3 upload exists and has bytes in it."""
    for path in (settings.media_dir / ".partial").glob("*.*"):
        try:
            if path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            continue
    return False


def test_large_upload_streams_through_and_downloads_identically(
    module_live_server: LiveServer,
) -> None:
    live_server = module_live_server
    chunk = os.urandom(2**20)
    count = 8
    expected = hashlib.sha256(chunk * count).hexdigest()

    def body() -> Iterator[bytes]:
        yield part_head("big.bin")
        for _ in range(count):
            yield chunk
        yield part_tail()

    with live_server.client() as client:
        response = client.post(
            "/api/media",
            content=body(),
            headers={"Content-Type": CONTENT_TYPE},
        )
        assert response.status_code == 201, response.text
        [media] = response.json()["items"]
        assert media["size"] == count * len(chunk)
        assert media["sha256"] == expected
        digest = hashlib.sha256()
        with client.stream("GET", media["download_url"]) as download:
            assert download.status_code == 200
            for piece in download.iter_bytes():
                digest.update(piece)
        assert digest.hexdigest() == expected


def test_upload_cut_off_midway_leaves_no_file_and_no_row(module_live_server: LiveServer) -> None:
    live_server = module_live_server
    settings = live_server.settings
    files_before, total_before = stored_files(settings), _catalog_total(live_server)
    head = part_head("cut.bin")
    declared = len(head) + 4 * 2**20 + len(part_tail())
    with socket.create_connection(("127.0.0.1", live_server.port)) as sock:
        sock.sendall(request_head(live_server.port, declared, live_server.token) + head)
        sock.sendall(os.urandom(2 * 2**20))
        assert wait_for(lambda: _writing(settings))
    assert wait_for(lambda: _partials(settings) == [])
    assert stored_files(settings) == files_before
    assert _catalog_total(live_server) == total_before


def test_declared_length_over_the_limit_is_refused_at_once(module_live_server: LiveServer) -> None:
    live_server = module_live_server
    limit = live_server.settings.max_upload_bytes
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        sock.sendall(request_head(live_server.port, limit * 3, live_server.token))
        answer = b""
        while b"}" not in answer and (piece := sock.recv(65536)):
            answer += piece
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"detail"' in answer


def test_streamed_upload_over_the_limit_is_413_and_leaves_nothing(
    module_live_server: LiveServer,
) -> None:
    live_server = module_live_server
    limit = live_server.settings.max_upload_bytes
    files_before = stored_files(live_server.settings)
    total_before = _catalog_total(live_server)

    def body() -> Iterator[bytes]:  # chunked: no Content-Length to refuse early
        yield part_head("too-big.bin")
        for _ in range(limit // 2**20 + 2):
            yield bytes(2**20)
        yield part_tail()

    with live_server.client() as client:
        try:
            response = client.post(
                "/api/media",
                content=body(),
                headers={"Content-Type": CONTENT_TYPE},
            )
        except httpx2.TransportError:
            response = None  # the server may close before the client finishes sending
        if response is not None:
            assert response.status_code == 413
    assert wait_for(lambda: _partials(live_server.settings) == [])
    assert stored_files(live_server.settings) == files_before
    assert _catalog_total(live_server) == total_before


def test_partial_upload_of_a_killed_server_is_removed_at_start_up(
    settings: Settings, tmp_path: Path
) -> None:
    server = start_server(settings, tmp_path / "first.log")
    try:
        head = part_head("killed.bin")
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(request_head(server.port, len(head) + 10 * 2**20, server.token) + head)
            sock.sendall(os.urandom(2**20 + 5))
            assert wait_for(lambda: _writing(settings))
            server.stop(signal.SIGKILL)
    finally:
        server.stop()
    assert len(_partials(settings)) == 1
    restarted = start_server(settings, tmp_path / "second.log")
    try:
        assert _partials(settings) == []
        assert stored_files(settings) == []
        assert _catalog_total(restarted) == 0
    finally:
        restarted.stop()


def test_download_cut_off_midway_stops_reading_and_releases_the_file(
    settings: Settings, tmp_path: Path
) -> None:
    size = 64 * 2**20
    server = start_server(
        settings.model_copy(update={"max_upload_bytes": 2 * size}), tmp_path / "log"
    )
    try:
        _cut_off_downloads(server, size)
    finally:
        server.stop()


def _cut_off_downloads(live_server: LiveServer, size: int) -> None:
    with live_server.client() as client:
        response = client.post("/api/media", files={"file": ("big.bin", os.urandom(size))})
        media = response.json()["items"][0]
    process = psutil.Process(live_server.process.pid)
    baseline_fds = _descriptors(process, live_server.port)
    read_before = process.io_counters().read_chars
    clients = 5
    for _ in range(clients):
        with socket.create_connection(("127.0.0.1", live_server.port)) as sock:
            sock.sendall(
                f"GET {media['download_url']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {live_server.token}\r\n\r\n".encode()
            )
            received = 0
            while received < 256 * 1024:
                received += len(sock.recv(65536))

    def stored_file_open() -> bool:
        return any("/objects/" in f.path for f in process.open_files())

    assert wait_for(lambda: not stored_file_open())
    assert wait_for(lambda: _descriptors(process, live_server.port) <= baseline_fds)
    # A sender that missed the disconnect would read every file to its end.
    assert process.io_counters().read_chars - read_before < clients * size / 4
