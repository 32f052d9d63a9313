"""``/media/{id}/stream`` and ``/download``: headers, ranges, HEAD."""

import os
from contextlib import ExitStack

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.catalog.migrate import upgrade_to_head
from app.config import Settings
from app.main import create_app
from app.serving.streaming import SendBudget
from tests.conftest import provision, signed_in, upload

DATA = bytes(range(256)) * 40  # 10,240 bytes


def test_full_stream_headers(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"])
    assert r.status_code == 200
    assert r.content == DATA
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"] == f'"{media["sha256"]}"'
    assert r.headers["last-modified"].endswith(" GMT")
    assert r.headers["content-disposition"] == 'inline; filename="bytes.bin"'
    assert r.headers["x-content-type-options"] == "nosniff"


def test_download_is_an_attachment(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["download_url"])
    assert r.headers["content-disposition"] == 'attachment; filename="bytes.bin"'
    assert r.content == DATA


def test_single_range(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"], headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-199/{len(DATA)}"
    assert r.headers["content-length"] == "100"
    assert r.content == DATA[100:200]


def test_open_ended_range(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"], headers={"Range": "bytes=10000-"})
    assert r.status_code == 206
    assert r.content == DATA[10000:]


def test_suffix_range_returns_last_bytes(client: TestClient) -> None:
    media = upload(client, b"0123456789", filename="digits.bin")
    r = client.get(media["stream_url"], headers={"Range": "bytes=-3"})
    assert r.status_code == 206
    assert r.headers["content-range"] == "bytes 7-9/10"
    assert r.content == b"789"


def test_safari_probe_gets_two_bytes(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"], headers={"Range": "bytes=0-1"})
    assert r.status_code == 206
    assert r.content == DATA[:2]
    assert r.headers["content-range"] == f"bytes 0-1/{len(DATA)}"


def test_unsatisfiable_range_is_416(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"], headers={"Range": "bytes=999999-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert r.content == b""


def test_invalid_range_is_ignored(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    for header in ("bytes=5-1", "pages=1-2", "garbage"):
        r = client.get(media["stream_url"], headers={"Range": header})
        assert r.status_code == 200, header
        assert r.content == DATA


def test_head_matches_get_without_body(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    get = client.get(media["download_url"])
    head = client.head(media["download_url"])
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "etag", "last-modified", "content-type", "content-disposition"):
        assert head.headers[name] == get.headers[name]


def test_head_with_range_answers_like_a_plain_get(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.head(media["stream_url"], headers={"Range": "bytes=0-1"})
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(DATA))


def test_empty_file(client: TestClient) -> None:
    media = upload(client, b"", filename="empty.txt")
    r = client.get(media["stream_url"])
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"


def test_unknown_id_is_404(client: TestClient) -> None:
    r = client.get("/media/nope/stream")
    assert r.status_code == 404
    assert client.head("/media/nope/download").status_code == 404


def test_multiple_ranges_are_multipart_byteranges(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"], headers={"Range": "bytes=0-9, 5000-5009, -5"})
    assert r.status_code == 206
    content_type = r.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.split("boundary=")[1]
    assert int(r.headers["content-length"]) == len(r.content)
    parts = r.content.split(f"\r\n--{boundary}".encode())
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    bodies = []
    for part in parts[1:-1]:
        head, _, body = part.partition(b"\r\n\r\n")
        assert b"Content-Type: application/octet-stream" in head
        bodies.append((head.split(b"Content-Range: ")[1].decode(), body))
    assert bodies == [
        (f"bytes 0-9/{len(DATA)}", DATA[:10]),
        (f"bytes 5000-5009/{len(DATA)}", DATA[5000:5010]),
        (f"bytes {len(DATA) - 5}-{len(DATA) - 1}/{len(DATA)}", DATA[-5:]),
    ]


def test_if_none_match_gives_304_without_body(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin", visibility="public")
    first = client.get(media["stream_url"])
    r = client.get(media["stream_url"], headers={"If-None-Match": first.headers["etag"]})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == first.headers["etag"]
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    r = client.get(
        media["stream_url"], headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert r.status_code == 304


def test_originals_are_immutable_from_the_first_answer(client: TestClient) -> None:
    # Processing never rewrites an original, so caches may keep it while processing runs.
    media = upload(client, DATA, filename="bytes.bin", visibility="public")
    r = client.get(media["stream_url"])
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_bytes_of_media_not_public_are_never_kept_by_shared_caches(client: TestClient) -> None:
    for visibility in ("unlisted", "private"):
        media = upload(client, DATA, filename="bytes.bin", visibility=visibility)
        r = client.get(media["stream_url"])
        assert r.headers["cache-control"] == "private, no-cache"


def test_if_match_mismatch_gives_412(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["download_url"], headers={"If-Match": '"not-it"'})
    assert r.status_code == 412
    assert r.content == b""
    # Not the bytes' own caching: the answer is for this request only.
    assert r.headers["cache-control"] == "private, no-store"


def test_repr_digest_lets_a_client_verify(client: TestClient) -> None:
    import base64
    import hashlib

    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["download_url"])
    expected = base64.b64encode(hashlib.sha256(r.content).digest()).decode()
    assert r.headers["repr-digest"] == f"sha-256=:{expected}:"


def test_if_range_with_stale_etag_gets_whole_file(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"], headers={"Range": "bytes=0-1", "If-Range": '"stale"'})
    assert r.status_code == 200
    assert r.content == DATA


def test_range_header_on_several_lines_is_ignored(client: TestClient) -> None:
    media = upload(client, DATA, filename="bytes.bin")
    r = client.get(media["stream_url"], headers=[("Range", "bytes=0-1"), ("Range", "bytes=2-3")])
    assert r.status_code == 200


def test_delete_through_another_worker_is_404_despite_the_lookup_cache(
    app: FastAPI, settings: Settings
) -> None:
    other = create_app(settings)
    token = provision(settings, "admin", is_admin=True)
    with signed_in(app, token) as first, signed_in(other, token) as second:
        media = upload(first, DATA, filename="bytes.bin")
        assert first.get(media["stream_url"]).status_code == 200  # now cached in `first`
        assert second.delete(f"/api/media/{media['id']}").status_code == 204
        r = first.get(media["stream_url"])
        assert r.status_code == 404


def test_bodies_larger_than_a_chunk_stream_in_pieces(settings: Settings) -> None:
    small_chunks = settings.model_copy(update={"chunk_bytes": 64 * 1024})
    upgrade_to_head(small_chunks)
    data = os.urandom(300 * 1024 + 7)
    token = provision(small_chunks, "admin", is_admin=True)
    with signed_in(create_app(small_chunks), token) as client:
        media = upload(client, data, filename="bytes.bin")
        assert client.get(media["stream_url"]).content == data
        r = client.get(media["stream_url"], headers={"Range": "bytes=100-200000"})
        assert r.status_code == 206 and r.content == data[100:200001]
        r = client.get(media["stream_url"], headers={"Range": "bytes=0-99999,150000-"})
        assert r.status_code == 206
        assert r.headers["content-type"].startswith("multipart/byteranges")
        assert int(r.headers["content-length"]) == len(r.content)
        assert data[:100000] in r.content and data[150000:] in r.content


def test_send_budget_shrinks_chunks_as_streams_grow() -> None:
    budget = SendBudget(budget_bytes=8 * 2**20, max_chunk_bytes=2**20)
    assert budget.chunk_bytes() == 2**20
    with ExitStack() as stack:
        for _ in range(8):
            stack.enter_context(budget.streaming())
        assert budget.chunk_bytes() == 512 * 1024
        for _ in range(56):
            stack.enter_context(budget.streaming())
        assert budget.active_streams == 64
        assert budget.chunk_bytes() == 64 * 1024
        for _ in range(1000):
            stack.enter_context(budget.streaming())
        assert budget.chunk_bytes() == 64 * 1024  # never below the floor
    assert budget.active_streams == 0
    assert budget.chunk_bytes() == 2**20
