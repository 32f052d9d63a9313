"""The deployment README describes: two nodes sharing PostgreSQL and a bucket, behind nginx
running ``deploy/nginx.conf`` as shipped (only its addresses changed)."""

import grp
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from app.config import Settings
from tests.conftest import (
    REPO_ROOT,
    LiveServer,
    attempt_login,
    free_port,
    provision,
    s3_settings,
    start_server,
)
from tests.postgres_server import PostgresServer
from tests.raw_uploads import CONTENT_TYPE, MIB, streamed_body
from tests.s3_server import S3Server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
EXAMPLE = REPO_ROOT / "deploy" / "nginx.conf"


def _adapted_example(listen_port: int, upstream_ports: list[int]) -> str:
    """The example with its placeholder addresses replaced by the test's."""
    text = EXAMPLE.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "server 10.0.0.11:8000": f"server 127.0.0.1:{upstream_ports[0]}",
        "server 10.0.0.12:8000": f"server 127.0.0.1:{upstream_ports[1]}",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


def _nginx_main_config(workdir: Path, site: str) -> str:
    # As root, workers would run as nobody, who cannot enter the 0700 temporary directory.
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = workdir / "temp"
    return f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    {site}
}}
"""


@pytest.fixture(scope="module")
def nodes(
    s3: S3Server, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LiveServer]]:
    """Two nodes on one deployment, for both tests: the upload test signs nobody in, and the
    throttle test's clients come from addresses of their own."""
    tmp_path = tmp_path_factory.mktemp("deployment")
    settings: Settings = s3_settings(
        s3,
        postgres,
        tmp_path / "media",
        max_upload_bytes=64 * MIB,
        processing_concurrency=0,
        trusted_proxies="127.0.0.1",  # nginx, as the README's deployment says
    )
    started = [start_server(settings, tmp_path / "node-a.log")]
    try:
        started.append(start_server(settings, tmp_path / "node-b.log"))
        yield started
    finally:
        for node in started:
            node.stop()


@pytest.fixture(scope="module")
def nginx(nodes: list[LiveServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("nginx")
    (workdir / "temp").mkdir(parents=True)
    port = free_port()
    config = workdir / "nginx.conf"
    site = _adapted_example(port, [node.port for node in nodes])
    config.write_text(_nginx_main_config(workdir, site))
    process = subprocess.Popen(
        [NGINX, "-c", str(config), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, (workdir / "error.log").read_text()
            try:
                if httpx2.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_uploads_and_ranges_pass_through_nginx_to_either_node(
    nginx: str, nodes: list[LiveServer]
) -> None:
    data = os.urandom(20 * MIB)
    token = nodes[0].token
    with httpx2.Client(base_url=nginx, timeout=60, headers=nodes[0].auth_headers) as client:
        response = client.post(
            "/api/media",
            content=streamed_body(
                "through-nginx.bin", (data[i : i + MIB] for i in range(0, len(data), MIB))
            ),
            headers={"Content-Type": CONTENT_TYPE},
        )
        assert response.status_code == 201, response.text
        media = response.json()["items"][0]
        assert media["sha256"] == hashlib.sha256(data).hexdigest()
        url = media["stream_url"]

        ranged = client.get(url, headers={"Range": f"bytes={5 * MIB}-{9 * MIB - 1}"})
        assert ranged.status_code == 206
        assert ranged.content == data[5 * MIB : 9 * MIB]
        both = client.get(url, headers={"Range": "bytes=0-9,-10"})
        assert both.status_code == 206
        assert both.headers["content-type"].startswith("multipart/byteranges")
        assert data[:10] in both.content and data[-10:] in both.content
        head = client.head(url)
        assert head.headers["content-length"] == str(len(data))
        etag = head.headers["etag"]
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
        whole = hashlib.sha256()
        with client.stream("GET", media["download_url"]) as download:
            for piece in download.iter_bytes():
                whole.update(piece)
        assert whole.hexdigest() == media["sha256"]

    # nginx sets no size cap of its own: the app's limit answers at once, with its message.
    port = int(nginx.rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST /api/media HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {200 * MIB}\r\n\r\n".encode()
        )
        answer = b""
        while b"}" not in answer and (piece := sock.recv(65536)):
            answer += piece
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"limit" in answer

    # Each node serves what went in through nginx.
    for node in nodes:
        with node.client() as direct:
            assert direct.get(url, headers={"Range": "bytes=0-99"}).content == data[:100]


def _from_address(base_url: str, address: str) -> httpx2.Client:
    """A client whose connections leave from ``address`` (any of 127.0.0.0/8 is this machine)."""
    transport = httpx2.HTTPTransport(local_address=address)
    return httpx2.Client(base_url=base_url, transport=transport, timeout=30)


def test_sign_in_throttle_counts_each_client_behind_nginx(
    nginx: str, nodes: list[LiveServer]
) -> None:
    # 20 failed sign-ins from one client address (4 on each of 5 accounts, under the
    # per-account limit) use up that address's allowance on both nodes, whatever it writes
    # in X-Forwarded-For; a neighbour at another address still signs in.
    from app.accounts.throttle import MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS

    password = "correct horse battery"
    per_account = MAX_FAILURES_PER_ACCOUNT - 1
    names = [f"guessed-{index}" for index in range(-(-MAX_FAILURES_PER_ADDRESS // per_account))]
    for name in [*names, "neighbour"]:
        provision(nodes[0].settings, name, password=password)
    failures = 0
    with _from_address(nginx, "127.0.0.2") as attacker:
        for name in names:
            for attempt in range(per_account):
                if failures == MAX_FAILURES_PER_ADDRESS:
                    break
                forged = {"X-Forwarded-For": f"198.51.100.{failures}"}
                attacker.headers.update(forged)
                response = attempt_login(attacker, name, f"guess {attempt}")
                assert response.status_code == 401, (failures, response.text)
                failures += 1
        attacker.cookies.clear()
        assert attempt_login(attacker, names[-1], password).status_code == 429
    with _from_address(nginx, "127.0.0.3") as neighbour:
        assert attempt_login(neighbour, "neighbour", password).status_code == 303
