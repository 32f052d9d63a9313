"""S3 storage against a real S3-compatible server (moto) and a real PostgreSQL: multipart
uploads, ranged reads, aborts that leave nothing, processing, and two nodes sharing it all."""

import gc
import hashlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from app.catalog.migrate import upgrade_to_head
from app.config import Settings
from app.main import create_app
from tests.conftest import (
    LiveServer,
    provision,
    s3_settings,
    signed_in,
    start_server,
    stored_files,
    upload_file,
    wait_for_processing,
)
from tests.media_samples import Samples
from tests.postgres_server import PostgresServer
from tests.raw_uploads import MIB, open_upload, wait_for
from tests.s3_server import S3Server, object_names, s3_client, uploads_in_flight


def _in_flight(settings: Settings) -> list[str]:
    assert settings.s3_endpoint_url and settings.s3_bucket
    return uploads_in_flight(settings.s3_endpoint_url, settings.s3_bucket)


def _objects(settings: Settings) -> list[str]:
    assert settings.s3_endpoint_url and settings.s3_bucket
    return object_names(settings.s3_endpoint_url, settings.s3_bucket)


def _markers(settings: Settings) -> list[Path]:
    return list((settings.media_dir / ".partial").glob("*"))


def _catalog_total(server: LiveServer) -> int:
    with server.client() as client:
        return client.get("/api/media").json()["total"]


@pytest.fixture
def deployment(s3: S3Server, postgres: PostgresServer, tmp_path: Path) -> Settings:
    """PostgreSQL for the catalog, a fresh bucket for the bytes, 64 MiB uploads."""
    return s3_settings(s3, postgres, tmp_path / "media", max_upload_bytes=64 * MIB)


@pytest.fixture
def node(deployment: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(deployment, tmp_path / "node.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def big_media_node(
    s3: S3Server, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A node of a deployment of its own holding only ``big_media``: the tests of it only
    read."""
    root = tmp_path_factory.mktemp("big-media")
    server = start_server(
        s3_settings(s3, postgres, root / "media", max_upload_bytes=64 * MIB), root / "node.log"
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def big_media(big_media_node: LiveServer) -> tuple[dict[str, Any], bytes]:
    """A 20 MiB upload: three parts of a multipart upload (8 + 8 + 4 MiB)."""
    data = os.urandom(20 * MIB)
    with big_media_node.client() as client:
        response = client.post("/api/media", files={"file": ("big.bin", data)})
    assert response.status_code == 201, response.text
    return response.json()["items"][0], data


def test_upload_streams_into_a_multipart_upload_and_downloads_identically(
    big_media_node: LiveServer, big_media: tuple[dict[str, Any], bytes]
) -> None:
    node = big_media_node
    media, data = big_media
    settings = node.settings
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    [name] = _objects(settings)
    assert name.startswith("library/")
    head = s3_client(node.settings.s3_endpoint_url).head_object(Bucket=settings.s3_bucket, Key=name)
    # A multipart object's ETag ends in the number of its parts.
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == len(data)
    assert _in_flight(settings) == [] and _markers(settings) == []
    digest = hashlib.sha256()
    with node.client() as client, client.stream("GET", media["download_url"]) as download:
        assert download.status_code == 200
        assert download.headers["content-length"] == str(len(data))
        for piece in download.iter_bytes():
            digest.update(piece)
    assert digest.hexdigest() == media["sha256"]


def test_ranges_are_byte_exact(
    big_media_node: LiveServer, big_media: tuple[dict[str, Any], bytes]
) -> None:
    node = big_media_node
    media, data = big_media
    url = media["stream_url"]
    size = len(data)
    with node.client() as client:
        for first, last in [
            (0, 1),
            (5 * MIB + 3, 13 * MIB + 7),
            (size - 100, size - 1),
            (0, size - 1),
        ]:
            response = client.get(url, headers={"Range": f"bytes={first}-{last}"})
            assert response.status_code == 206
            assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
            assert response.content == data[first : last + 1]
        suffix = client.get(url, headers={"Range": "bytes=-3000000"})
        assert suffix.content == data[-3000000:]
        spans = [(10, 20), (3 * MIB, 7 * MIB), (19 * MIB, 19 * MIB + 99)]
        response = client.get(
            url, headers={"Range": "bytes=" + ",".join(f"{a}-{b}" for a, b in spans)}
        )
    assert response.status_code == 206
    boundary = re.search(r"boundary=(\w+)", response.headers["content-type"]).group(1)  # type: ignore[union-attr]
    parts = response.content.split(f"--{boundary}".encode())[1:-1]
    assert len(parts) == len(spans)
    for part, (first, last) in zip(parts, spans, strict=True):
        headers, _, body = part.partition(b"\r\n\r\n")
        assert f"Content-Range: bytes {first}-{last}/{size}".encode() in headers
        assert body[:-2] == data[first : last + 1]  # each body ends with CRLF


def test_head_and_304_make_no_s3_call(
    s3: S3Server, big_media_node: LiveServer, big_media: tuple[dict[str, Any], bytes]
) -> None:
    node = big_media_node
    media, _ = big_media
    [name] = _objects(node.settings)
    etag = f'"{media["sha256"]}"'
    with node.client() as client:
        before = len(s3.requests_for(name))
        for _ in range(3):
            assert client.head(media["stream_url"]).status_code == 200
            cached = client.get(media["stream_url"], headers={"If-None-Match": etag})
            assert cached.status_code == 304
        # One real read, to see that reads do show in the server's log.
        assert client.get(media["stream_url"], headers={"Range": "bytes=0-9"}).status_code == 206
    assert wait_for(lambda: len(s3.requests_for(name)) > before)
    time.sleep(0.2)
    made = s3.requests_for(name)[before:]
    assert len(made) == 1 and made[0].split('"')[1].startswith("GET "), made


def test_upload_cut_off_after_a_part_aborts_the_multipart_upload(node: LiveServer) -> None:
    settings = node.settings
    with open_upload(node.port, "cut.bin", 40 * MIB, 12 * MIB, node.token):
        assert wait_for(lambda: _in_flight(settings) != [])
    assert wait_for(lambda: _in_flight(settings) == [])
    assert wait_for(lambda: _markers(settings) == [])
    assert stored_files(settings) == []
    assert _catalog_total(node) == 0


def test_multipart_upload_of_a_killed_server_is_aborted_at_start_up(
    deployment: Settings, tmp_path: Path
) -> None:
    server = start_server(deployment, tmp_path / "first.log")
    try:
        with open_upload(server.port, "killed.bin", 40 * MIB, 12 * MIB, server.token):
            assert wait_for(lambda: _in_flight(deployment) != [])
            server.stop(signal.SIGKILL)
    finally:
        server.stop()
    assert len(_in_flight(deployment)) == 1
    assert len(_markers(deployment)) == 1
    restarted = start_server(deployment, tmp_path / "second.log")
    try:
        assert _in_flight(deployment) == []
        assert _markers(deployment) == []
        assert stored_files(deployment) == []
        assert _catalog_total(restarted) == 0
    finally:
        restarted.stop()


def test_a_missing_bucket_stops_the_server_with_a_clear_message(
    deployment: Settings, tmp_path: Path
) -> None:
    missing = deployment.model_copy(update={"s3_bucket": "no-such-bucket"})
    with pytest.raises(RuntimeError, match="no-such-bucket"):
        start_server(missing, tmp_path / "server.log")


def test_two_nodes_share_catalog_and_bucket(
    deployment: Settings, samples: Samples, tmp_path: Path
) -> None:
    """Uploads to either node are served by both, processed once, and deleted for good."""
    nodes = [
        start_server(deployment, tmp_path / "a.log"),
        start_server(deployment, tmp_path / "b.log"),
    ]
    try:
        uploaded = [upload_file(nodes[i % 2], samples.mp4_moov_at_end) for i in range(4)]
        uploaded.append(upload_file(nodes[1], samples.png))
        finished = [wait_for_processing(nodes[0], media["id"]) for media in uploaded]
        assert {media["processing"]["state"] for media in finished} == {"done"}
        for index, media in enumerate(finished):
            other = nodes[(index + 1) % 2]
            with other.client() as client:
                body = client.get(media["download_url"]).content
                # Processed through a local copy; the stored original is never rewritten.
                assert hashlib.sha256(body).hexdigest() == media["sha256"]
                assert media["sha256"] == uploaded[index]["sha256"]
                assert client.get(media["thumbnail_url"]).status_code == 200
        # Each video: its bytes, a poster and a thumbnail; the image: its bytes, the scaled
        # copy its page shows and a thumbnail.
        expected = 4 * 3 + 3
        assert wait_for(lambda: len(_objects(deployment)) == expected, seconds=30)
        with nodes[1].client() as client:
            for media in finished:
                assert client.delete(f"/api/media/{media['id']}").status_code == 204
        with nodes[0].client() as client:
            assert client.get(finished[0]["download_url"]).status_code == 404
    finally:
        for node in nodes:
            node.stop()
    assert _objects(deployment) == []
    assert _in_flight(deployment) == []
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    ran = re.findall(r"job (\d+) \(media \w+\): done", logs)
    assert len(ran) == 5 and len(set(ran)) == 5, ran


def test_an_object_store_failing_mid_upload_answers_503_and_leaves_no_row(
    s3: S3Server, postgres: PostgresServer, tmp_path: Path
) -> None:
    settings = s3_settings(s3, postgres, tmp_path / "media", max_upload_bytes=64 * MIB)
    upgrade_to_head(settings)
    assert settings.s3_bucket and settings.s3_endpoint_url
    with signed_in(create_app(settings), provision(settings, "admin", is_admin=True)) as client:
        # The bucket goes away under the running app: every S3 call now fails.
        s3_client(settings.s3_endpoint_url).delete_bucket(Bucket=settings.s3_bucket)
        for size in (100, 20 * MIB):  # one PutObject; a multipart upload
            response = client.post("/api/media", files={"file": ("x.bin", os.urandom(size))})
            assert response.status_code == 503
            assert "Storage is unavailable" in response.json()["detail"]
        assert client.get("/api/media").json()["total"] == 0
        assert client.get("/healthz").status_code == 200
    # Nothing of the failed uploads is left open (a leaked handle fails the test here).
    gc.collect()


def test_many_uploads_in_progress_fill_their_parts_on_disk_not_in_memory(
    deployment: Settings, tmp_path: Path
) -> None:
    node = start_server(deployment, tmp_path / "node.log")
    chunk = os.urandom(15 * MIB)  # a whole part sent, and 7 MiB of a second one filling
    stalled = []
    try:
        process = psutil.Process(node.process.pid)
        rss_before = process.memory_info().rss
        for i in range(40):
            sock = open_upload(node.port, f"s{i}.bin", 64 * MIB, 0, node.token)
            sock.sendall(chunk)
            stalled.append(sock)
        spools = deployment.media_dir / ".partial"
        assert wait_for(lambda: len(list(spools.glob("*.s3upload"))) == 40, seconds=60)
        # Parts filling in memory would be 40 × 7 MiB.
        grown = process.memory_info().rss - rss_before
        assert grown < 96 * MIB, f"{grown / MIB:.0f} MiB"
    finally:
        for sock in stalled:
            sock.close()
        spools = deployment.media_dir / ".partial"
        assert wait_for(lambda: list(spools.glob("*.s3upload")) == [], seconds=60)
        node.stop()
    assert _in_flight(deployment) == []
