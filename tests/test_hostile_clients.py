"""Clients that stall, flood or oversize, against a real ``streamport serve``: each attack is
refused or contained, and the server keeps answering everyone else. Tests that measure the
server's memory, or need settings of their own, get a fresh server; the others share one."""

import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psutil
import pytest

from app.config import Settings
from tests.conftest import LiveServer, start_server, stored_files
from tests.raw_uploads import MIB, part_head, request_head, wait_for

# Short limits, so the tests see them act without waiting for the defaults.
TIMEOUT_SECONDS = 2.0


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[LiveServer]:
    """A server with short connection timeouts, under the usual 1024 descriptors: a fresh
    one, for the tests that measure how much its memory grows."""
    server = _start(tmp_path, nofile=1024)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """As ``guarded``, one for the tests that look only at what their own attack did (each
    closes its connections; one that a server kept would show in the next test)."""
    server = _start(tmp_path_factory.mktemp("guarded"), nofile=1024)
    yield server
    server.stop()


def _start(tmp_path: Path, nofile: int, **values: object) -> LiveServer:
    settings = Settings(
        _env_file=None,
        **{
            "media_dir": tmp_path / "media",
            "max_upload_bytes": 64 * MIB,
            "processing_concurrency": 0,
            # Hostile clients read public media, as anyone may.
            "default_visibility": "public",
            "header_timeout_seconds": TIMEOUT_SECONDS,
            "keepalive_timeout_seconds": TIMEOUT_SECONDS,
            "body_timeout_seconds": TIMEOUT_SECONDS,
            "send_timeout_seconds": TIMEOUT_SECONDS,
            **values,
        },
    )
    wrapper = ["prlimit", f"--nofile={nofile}:{nofile}", "--"]
    return start_server(settings, tmp_path / "server.log", wrapper=wrapper)


@pytest.fixture(autouse=True)
def _enough_descriptors_for_the_client() -> None:
    """The attacking side needs more than 1024 sockets itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _answer(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """What the server sends until it closes (or ``limit`` bytes)."""
    data = b""
    try:
        while len(data) < limit and (piece := sock.recv(65536)):
            data += piece
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (reading whatever it sent before)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


@pytest.mark.parametrize("first_bytes", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "])
def test_idle_connections_do_not_exhaust_descriptors(
    shared_guarded: LiveServer, first_bytes: bytes
) -> None:
    """1,100 connections that send nothing, or a request head they never finish."""
    guarded = shared_guarded
    idle = []
    for _ in range(1100):
        sock = socket.create_connection(("127.0.0.1", guarded.port))
        if first_bytes:
            try:
                sock.sendall(first_bytes)
            except (BrokenPipeError, ConnectionResetError):
                pass  # already closed to make room
        idle.append(sock)
    try:
        # The server keeps making room: the oldest idle connections give way to new ones.
        with guarded.client(timeout=5) as client:
            for _ in range(5):
                assert client.get("/healthz").status_code == 200
        # And nobody may hold a connection without sending a request for long.
        assert wait_for(lambda: all(_closed_by_server(s) for s in idle[-200:]), 3 * TIMEOUT_SECONDS)
        fds = psutil.Process(guarded.process.pid).num_fds()
        assert fds < 1024
    finally:
        for sock in idle:
            sock.close()


def test_a_request_head_that_never_ends_gets_408(shared_guarded: LiveServer) -> None:
    guarded = shared_guarded
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3 * TIMEOUT_SECONDS


def test_a_giant_header_gets_431_without_being_read_whole(guarded: LiveServer) -> None:
    process = psutil.Process(guarded.process.pid)
    rss_before = process.memory_info().rss
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=20) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        piece = b"a" * MIB
        try:
            while sent < 256 * MIB:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 256 * MIB  # the server stopped listening long before the end
    assert process.memory_info().rss - rss_before < 16 * MIB
    with guarded.client() as client:
        assert client.get("/healthz").status_code == 200


def test_range_floods_and_long_numbers_never_fail(shared_guarded: LiveServer) -> None:
    guarded = shared_guarded
    with guarded.client() as client:
        media = client.post(
            "/api/media", files={"file": ("data.bin", bytes(range(256)) * 40)}
        ).json()["items"][0]
        url = media["stream_url"]
        long_number = "9" * 10_000
        r = client.get(url, headers={"Range": f"bytes=0-{long_number}"})
        assert (r.status_code, len(r.content)) == (206, 10240)
        r = client.get(url, headers={"Range": f"bytes={long_number}-"})
        assert r.status_code == 416
        r = client.get(url, headers={"Range": f"bytes=-{long_number}"})
        assert (r.status_code, len(r.content)) == (206, 10240)
        # More specs than STREAMPORT_MAX_RANGES: the whole file, once.
        many = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 4_000, 2))
        r = client.get(url, headers={"Range": many})
        assert (r.status_code, len(r.content)) == (200, 10240)
    # A million specs do not fit in a request head at all.
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=20) as sock:
        flood = "bytes=" + "0-0," * 1_000_000
        try:
            sock.sendall(
                f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: {flood}\r\n\r\n".encode()
            )
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert _answer(sock).startswith(b"HTTP/1.1 431 ")


def test_a_stalled_upload_is_discarded(shared_guarded: LiveServer) -> None:
    guarded = shared_guarded
    settings = guarded.settings
    files_before = stored_files(settings)
    with guarded.client() as client:
        total_before = client.get("/api/media").json()["total"]
    head = part_head("stalled.bin")
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=20) as sock:
        sock.sendall(request_head(guarded.port, len(head) + 32 * MIB, guarded.token) + head)
        sock.sendall(os.urandom(MIB))
        assert wait_for(lambda: any((settings.media_dir / ".partial").glob("*.part")))
        # Then nothing more: the server gives up on the body and leaves nothing behind.
        assert wait_for(lambda: _closed_by_server(sock), 4 * TIMEOUT_SECONDS)
    assert wait_for(lambda: stored_files(settings) == files_before)
    with guarded.client() as client:
        assert client.get("/api/media").json()["total"] == total_before


def test_a_client_that_stops_reading_a_download_is_dropped(shared_guarded: LiveServer) -> None:
    guarded = shared_guarded
    with guarded.client() as client:
        response = client.post("/api/media", files={"file": ("big.bin", os.urandom(48 * MIB))})
        media = response.json()["items"][0]
    process = psutil.Process(guarded.process.pid)

    def serving_the_file() -> bool:
        return any("/objects/" in f.path for f in process.open_files())

    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET {media['download_url']} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        sock.recv(1024)  # the answer has started; then this client reads no more
        assert wait_for(serving_the_file, 5)
        assert wait_for(lambda: not serving_the_file(), 4 * TIMEOUT_SECONDS)


def _busy_uploads(server: LiveServer, count: int) -> list[socket.socket]:
    """``count`` connections each in the middle of an upload's body: none is idle."""
    head = part_head("slow.bin")
    busy = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(request_head(server.port, len(head) + MIB, server.token) + head + b"x")
        busy.append(sock)
    return busy


def test_when_every_connection_is_busy_a_new_one_gets_503(tmp_path: Path) -> None:
    server = _start(tmp_path, nofile=1024, max_connections=4, body_timeout_seconds=30.0)
    try:
        busy = _busy_uploads(server, 4)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            answer = _answer(extra)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:100]
        assert b"retry-after: 5" in answer.lower()
        for sock in busy:
            sock.close()
        # Once they are gone, the server answers again.
        with server.client() as client:
            assert wait_for(lambda: client.get("/healthz").status_code == 200)
    finally:
        server.stop()


def test_a_keep_alive_connection_serves_many_requests(shared_guarded: LiveServer) -> None:
    """The guards do not get in the way of an ordinary client reusing its connection."""
    guarded = shared_guarded
    with httpx2.Client(base_url=guarded.base_url, timeout=10) as client:
        for _ in range(50):
            response = client.get("/healthz")
            assert response.status_code == 200
            # One Date, the application's (uvicorn's own is off).
            assert len(response.headers.get_list("date")) == 1
        time.sleep(TIMEOUT_SECONDS / 2)
        assert client.get("/healthz").status_code == 200


def test_two_thousand_event_streams_cost_the_server_little(tmp_path: Path) -> None:
    # No processing: the job stays pending, so every stream stays open.
    server = _start(
        tmp_path,
        nofile=16384,
        max_connections=5000,
        max_connections_per_address=5000,
        max_event_streams_per_client=5000,
        processing_concurrency=0,
        header_timeout_seconds=20.0,
    )
    streams = []
    try:
        with server.client() as client:
            media = client.post("/api/media", files={"file": ("clip.mp4", b"x" * 100)}).json()
        request = (
            f"GET {media['items'][0]['events_url']} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        )
        for _ in range(2000):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(request)
            streams.append(sock)
        for sock in streams:
            sock.settimeout(20)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        process = psutil.Process(server.process.pid)
        before = sum(process.cpu_times()[:2])
        time.sleep(5)
        busy = sum(process.cpu_times()[:2]) - before
        # One catalog query per interval for all of them, not 4,000 a second.
        assert busy < 1.5, f"{busy:.2f} s of CPU in 5 s with 2,000 streams open"
        with server.client(timeout=10) as client:
            assert client.get("/").status_code == 200
    finally:
        for sock in streams:
            sock.close()
        server.stop()


def test_event_streams_are_capped_per_client(shared_guarded: LiveServer) -> None:
    guarded = shared_guarded
    with guarded.client() as client:
        media = client.post("/api/media", files={"file": ("clip.mp4", b"x" * 100)}).json()
    url = media["items"][0]["events_url"]
    streams = []
    try:
        for _ in range(guarded.settings.max_event_streams_per_client):
            sock = socket.create_connection(("127.0.0.1", guarded.port), timeout=10)
            sock.sendall(f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            streams.append(sock)
        with guarded.client() as client:
            refused = client.get(url)
        assert refused.status_code == 429
        assert "progress streams" in refused.text
    finally:
        for sock in streams:
            sock.close()
    # Closed streams free their places.
    with guarded.client() as client, client.stream("GET", url) as response:
        assert wait_for(lambda: response.status_code == 200)


def test_a_flood_of_pipelined_requests_is_cut_short(guarded: LiveServer) -> None:
    process = psutil.Process(guarded.process.pid)
    rss_before = process.memory_info().rss
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sent = 0
        try:
            while sent < 20 * MIB:  # 600,000 requests, none of whose answers is read
                sock.sendall(request * 1000)
                sent += len(request) * 1000
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        assert sent < 20 * MIB, "the server kept reading"
    assert process.memory_info().rss - rss_before < 64 * MIB
    with guarded.client() as client:
        assert client.get("/healthz").status_code == 200


def test_endless_trailers_of_a_chunked_body_are_refused(guarded: LiveServer) -> None:
    process = psutil.Process(guarded.process.pid)
    rss_before = process.memory_info().rss
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(
            b"PATCH /api/media/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
        )
        sent = 0
        try:
            while sent < 300 * MIB:
                sock.sendall(b"X-Trailer: " + b"t" * 1000 + b"\r\n")
                sent += 1013
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 300 * MIB
    assert process.memory_info().rss - rss_before < 32 * MIB


def test_a_body_trickling_in_below_the_minimum_rate_is_given_up(shared_guarded: LiveServer) -> None:
    guarded = shared_guarded
    files_before = stored_files(guarded.settings)
    head = part_head("rudy.bin")
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=30) as sock:
        sock.sendall(request_head(guarded.port, len(head) + MIB, guarded.token) + head)
        # A byte a second: never silent for the whole body timeout, but far below any link.
        started = time.monotonic()
        while not _closed_by_server(sock) and time.monotonic() - started < 20:
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(TIMEOUT_SECONDS / 2)
        assert _closed_by_server(sock)
        assert time.monotonic() - started < 15
    assert wait_for(lambda: stored_files(guarded.settings) == files_before)


def test_one_address_may_not_take_every_connection(tmp_path: Path) -> None:
    server = _start(tmp_path, nofile=1024, max_connections_per_address=5, body_timeout_seconds=30.0)
    busy = _busy_uploads(server, 5)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            assert _answer(extra).startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in busy:
            sock.close()
        server.stop()


def test_an_upgrade_request_is_an_ordinary_request(shared_guarded: LiveServer) -> None:
    guarded = shared_guarded
    with guarded.client() as client:
        response = client.get(
            "/",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_event_stream_of_a_deleted_media_ends_without_a_state(
    shared_guarded: LiveServer,
) -> None:
    guarded = shared_guarded
    with guarded.client() as client:
        media = client.post("/api/media", files={"file": ("clip.mp4", b"x" * 100)}).json()
        media = media["items"][0]
        with client.stream("GET", media["events_url"]) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            client.delete(f"/api/media/{media['id']}")
            rest = list(lines)  # ends once the hub sees the media gone
    assert not any('"done"' in line for line in rest), rest
