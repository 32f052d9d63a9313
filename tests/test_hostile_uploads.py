"""Uploads built to exhaust memory, descriptors or disk, against a real ``streamport serve``:
each is refused or contained, and leaves nothing behind."""

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.config import Settings
from tests.conftest import LiveServer, start_server, stored_files
from tests.raw_uploads import (
    BOUNDARY,
    CONTENT_TYPE,
    MIB,
    part_head,
    part_tail,
    read_response,
    wait_for,
)
from tests.test_hostile_clients import _answer


def _start_guarded(tmp_path: Path) -> LiveServer:
    """A server under the usual 1024 descriptors, with room for slow attackers."""
    settings = Settings(
        _env_file=None,
        media_dir=tmp_path / "media",
        max_upload_bytes=64 * MIB,
        processing_concurrency=0,
        body_timeout_seconds=30,
        # The attacks here come from one address, as many clients behind one proxy would.
        max_connections_per_address=1000,
    )
    wrapper = ["prlimit", "--nofile=1024:1024", "--"]
    return start_server(settings, tmp_path / "server.log", wrapper=wrapper)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh server, for the tests that measure its memory or descriptors or count what it
    holds."""
    live = _start_guarded(tmp_path)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the tests that look only at the answer to their own request and at
    what it added."""
    live = _start_guarded(tmp_path_factory.mktemp("hostile-uploads"))
    yield live
    live.stop()


def _chunked_head(
    port: int, path: str = "/api/media", content_type: str = CONTENT_TYPE, token: str = ""
) -> bytes:
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}"
        f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _send_until_answered(sock: socket.socket, pieces: Iterator[bytes]) -> tuple[int, bytes]:
    """Send ``pieces`` until the server answers or stops reading; bytes sent, and the answer."""
    sent = 0
    sock.settimeout(20)
    try:
        for piece in pieces:
            sock.sendall(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent, _answer(sock)


def _server_fds(server: LiveServer) -> int:
    return psutil.Process(server.process.pid).num_fds()


def _tiny_part(index: int) -> bytes:
    return part_head(f"tiny-{index}.txt") + f"file {index}".encode() + b"\r\n"


def test_a_thousand_tiny_parts_hold_no_descriptors(server: LiveServer) -> None:
    before = _server_fds(server)
    body = b"".join(_tiny_part(i) for i in range(1000))
    # Every part but the final boundary: the request stays open, its files received (the
    # last one ends only when the boundary after it comes).
    with socket.create_connection(("127.0.0.1", server.port)) as flood:
        flood.sendall(_chunked_head(server.port, token=server.token) + _chunk(body))
        assert wait_for(lambda: _stored_count(server) >= 999)
        assert _server_fds(server) - before < 50
        # Meanwhile everyone else uploads as usual.
        with server.client() as client:
            response = client.post("/api/media", files={"file": ("other.bin", b"123")})
            assert response.status_code == 201, response.text
        flood.sendall(_chunk(f"--{BOUNDARY}--\r\n".encode()) + _chunk(b""))
        answer = _answer(flood, limit=4 * MIB)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    with server.client() as client:
        assert client.get("/api/media").json()["total"] == 1001


def _stored_count(server: LiveServer) -> int:
    return len(list((server.settings.media_dir / "objects").glob("*/*")))


def test_uploads_that_stall_after_their_headers_hold_little(server: LiveServer) -> None:
    process = psutil.Process(server.process.pid)
    rss_before = process.memory_info().rss
    stalled = []
    try:
        for i in range(300):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(
                _chunked_head(server.port, token=server.token)
                + _chunk(part_head(f"s{i}.bin") + b"x" * 1024)
            )
            stalled.append(sock)
        assert wait_for(lambda: len(process.net_connections()) >= 300)
        # No buffer is allocated before bytes arrive to fill it, and no file is opened for
        # a kilobyte.
        assert process.memory_info().rss - rss_before < 48 * MIB
        assert list((server.settings.media_dir / ".partial").glob("*.part")) == []
    finally:
        for sock in stalled:
            sock.close()
    assert wait_for(lambda: stored_files(server.settings) == [])


@pytest.mark.parametrize("where", ["preamble", "part headers", "fields", "epilogue"])
def test_a_flood_of_form_overhead_is_refused_early(guarded_server: LiveServer, where: str) -> None:
    server = guarded_server
    stored_before = len(stored_files(server.settings))

    def pieces() -> Iterator[bytes]:
        yield _chunked_head(server.port, token=server.token)
        if where == "preamble":
            for _ in range(200):
                yield _chunk(b"p" * MIB)
        if where == "part headers":
            head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=note\r\n".encode()
            for _ in range(4000):
                yield _chunk(head + b"X-Pad: " + b"h" * 60_000 + b"\r\n\r\nv\r\n")
        if where == "fields":
            for i in range(200_000):
                yield _chunk(
                    f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=f{i}\r\n\r\n".encode()
                    + b"v" * 1000
                    + b"\r\n"
                )
        yield _chunk(part_head("ok.bin") + b"data" + part_tail())
        if where == "epilogue":
            for _ in range(200):
                yield _chunk(b"e" * MIB)
        yield _chunk(b"")

    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sent, answer = _send_until_answered(sock, pieces())
    if where == "epilogue":
        # The body ended at its final boundary: what follows is dropped unread.
        assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    elif where == "preamble":
        # The parser wants the body to start with its boundary (no preamble at all).
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
        assert sent < 32 * MIB
    else:
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
        assert sent < 32 * MIB
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
    expected = stored_before + (1 if where == "epilogue" else 0)
    assert wait_for(lambda: len(stored_files(server.settings)) == expected)


def test_a_large_json_body_is_refused_before_it_is_read(server: LiveServer) -> None:
    with server.client() as client:
        media = client.post("/api/media", files={"file": ("a.bin", b"abc")}).json()["items"][0]
    path = f"/api/media/{media['id']}"
    process = psutil.Process(server.process.pid)
    rss_before = process.memory_info().rss
    # Declared: refused from the head alone.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300 * MIB}\r\n\r\n".encode()
        )
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b'"detail"' in answer

    # Chunked: refused once a few KiB have come.
    def pieces() -> Iterator[bytes]:
        yield (
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        yield _chunk(b'{"title": "' + b"t" * MIB)
        for _ in range(299):
            yield _chunk(b"t" * MIB)
        yield _chunk(b'"}') + _chunk(b"")

    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sent, answer = _send_until_answered(sock, pieces())
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert sent < 64 * MIB
    assert process.memory_info().rss - rss_before < 32 * MIB
    with server.client() as client:
        assert client.get(path).json()["title"] == "a"


def test_a_large_form_post_to_a_page_is_refused(guarded_server: LiveServer) -> None:
    server = guarded_server
    with server.client() as client:
        media = client.post("/api/media", files={"file": ("a.bin", b"abc")}).json()["items"][0]
        response = client.post(f"/media/{media['id']}/rename", data={"title": "t" * (2 * MIB)})
    assert response.status_code == 413
    assert "text/html" in response.headers["content-type"]


def test_running_out_of_descriptors_is_never_a_500_and_leaves_nothing(tmp_path: Path) -> None:
    # Each of these uploads holds its ledger and its second file besides the socket.
    live = _start_guarded(tmp_path)
    settings = live.settings
    held = []
    try:
        for i in range(500):
            sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
            body = _chunk(_tiny_part(i)) + _chunk(part_head(f"second-{i}.bin") + b"y" * 200_000)
            try:
                sock.sendall(_chunked_head(live.port, token=live.token) + body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            held.append(sock)
        time.sleep(2)
        answers = [_pending_answer(sock) for sock in held]
    finally:
        for sock in held:
            sock.close()
        live.stop()
    server_errors = [a for a in answers if a.startswith(b"HTTP/1.1 5")]
    assert all(a.startswith(b"HTTP/1.1 503 ") for a in server_errors), server_errors[:3]
    log = (tmp_path / "server.log").read_text()
    assert "Too many open files" not in log and "Traceback" not in log
    assert stored_files(settings) == []


def _pending_answer(sock: socket.socket) -> bytes:
    """What the server has answered so far, without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(200)
    except (BlockingIOError, ConnectionResetError):
        return b""


def test_a_boundary_too_long_for_the_parser_is_a_400(guarded_server: LiveServer) -> None:
    server = guarded_server
    with server.client() as client:
        response = client.post(
            "/api/media",
            content=b"x",
            headers={"Content-Type": "multipart/form-data; boundary=" + "b" * 257},
        )
    assert response.status_code == 400, response.text
    assert "boundary" in response.json()["detail"]


def _stall_uploads(server: LiveServer, count: int, each_bytes: int) -> list[socket.socket]:
    """``count`` uploads that each send ``each_bytes`` of a file, then nothing."""
    chunk = os.urandom(each_bytes)
    stalled = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(
            _chunked_head(server.port, token=server.token) + _chunk(part_head(f"s{i}.bin") + chunk)
        )
        stalled.append(sock)
    return stalled


def test_many_uploads_in_progress_share_a_memory_budget(server: LiveServer) -> None:
    process = psutil.Process(server.process.pid)
    rss_before = process.memory_info().rss
    stalled = _stall_uploads(server, 200, 3 * MIB)
    try:
        partials = server.settings.media_dir / ".partial"
        assert wait_for(lambda: len(list(partials.glob("*.part"))) == 200)
        # Two buffers of up to 1 MiB each would be 400 MiB.
        grown = process.memory_info().rss - rss_before
        assert grown < 160 * MIB, f"{grown / MIB:.0f} MiB"
    finally:
        for sock in stalled:
            sock.close()
    assert wait_for(lambda: stored_files(server.settings) == [])
