"""Uploads through the API and the form: stored exactly, or refused leaving nothing behind."""

import hashlib
import os
import re

from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import stored_files, upload


def _catalog_total(client: TestClient) -> int:
    return client.get("/api/media").json()["total"]


def test_api_upload_then_download_is_byte_identical(client: TestClient) -> None:
    data = os.urandom(3 * 2**20 + 17)
    media = upload(client, data, filename="random.bin")
    assert media["size"] == len(data)
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["filename"] == "random.bin"
    assert media["title"] == "random"
    downloaded = client.get(media["download_url"])
    assert downloaded.status_code == 200
    assert downloaded.content == data
    assert hashlib.sha256(downloaded.content).hexdigest() == media["sha256"]


def test_api_upload_answers_201_with_location(client: TestClient) -> None:
    response = client.post("/api/media", files={"file": ("a.txt", b"hello", "text/plain")})
    assert response.status_code == 201
    [media] = response.json()["items"]
    assert response.headers["location"] == f"/api/media/{media['id']}"
    fetched = client.get(response.headers["location"]).json()
    # Processing runs in the background, so only what it does not change is compared.
    for field in ("id", "title", "filename", "content_type", "size", "sha256", "created_at"):
        assert fetched[field] == media[field]


def test_upload_keeps_given_title(client: TestClient) -> None:
    media = upload(client, b"x", filename="a.bin", title="  My   holiday  ")
    assert media["title"] == "My holiday"


def test_several_files_in_one_request_keep_upload_order(client: TestClient) -> None:
    files = [
        ("file", (f"part{i}.bin", os.urandom(1000 + i), "application/octet-stream"))
        for i in range(3)
    ]
    response = client.post("/api/media", files=files)
    assert response.status_code == 201
    items = response.json()["items"]
    assert [m["filename"] for m in items] == ["part0.bin", "part1.bin", "part2.bin"]
    for (_, (_, data, _)), media in zip(files, items, strict=True):
        assert client.get(media["stream_url"]).content == data


def test_form_upload_redirects_to_media_page(client: TestClient) -> None:
    response = client.post(
        "/upload",
        files={"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(400), "video/mp4")},
        data={"title": "Clip"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Clip" in page.text
    assert "<video" in page.text


def test_form_upload_of_several_files_redirects_to_catalog(client: TestClient) -> None:
    response = client.post(
        "/upload",
        files=[("file", ("a.txt", b"a", "text/plain")), ("file", ("b.txt", b"b", "text/plain"))],
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert _catalog_total(client) == 2


def test_non_ascii_name_survives_json_and_filename_star(client: TestClient) -> None:
    media = upload(client, b"data", filename="Übung – 日本語.mp3")
    assert media["filename"] == "Übung – 日本語.mp3"
    assert client.get(f"/api/media/{media['id']}").json()["filename"] == "Übung – 日本語.mp3"
    response = client.get(media["download_url"])
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert (
        "filename*=UTF-8''%C3%9Cbung%20%E2%80%93%20%E6%97%A5%E6%9C%AC%E8%AA%9E.mp3" in disposition
    )


def test_over_the_limit_is_413_and_leaves_nothing(client: TestClient, settings: Settings) -> None:
    data = b"x" * (settings.max_upload_bytes + 1)
    response = client.post(
        "/api/media", files={"file": ("big.bin", data, "application/octet-stream")}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert stored_files(settings) == []
    assert _catalog_total(client) == 0


def test_over_the_limit_in_a_later_file_removes_earlier_ones(
    client: TestClient, settings: Settings
) -> None:
    half = settings.max_upload_bytes // 2 + 1
    files = [("file", (f"{i}.bin", b"y" * half, "application/octet-stream")) for i in range(2)]
    response = client.post("/api/media", files=files)
    assert response.status_code == 413
    assert stored_files(settings) == []
    assert _catalog_total(client) == 0


def test_declared_length_over_the_limit_is_refused_before_reading(
    client: TestClient, settings: Settings
) -> None:
    response = client.post(
        "/api/media",
        content=b"--b\r\n",
        headers={
            "content-type": "multipart/form-data; boundary=b",
            "content-length": str(settings.max_upload_bytes * 2),
        },
    )
    assert response.status_code == 413


def test_form_over_the_limit_shows_the_form_again(client: TestClient, settings: Settings) -> None:
    data = b"x" * (settings.max_upload_bytes + 1)
    response = client.post("/upload", files={"file": ("big.bin", data, "application/octet-stream")})
    assert response.status_code == 413
    assert "text/html" in response.headers["content-type"]
    assert 'name="file"' in response.text
    assert "limit" in response.text
    assert stored_files(settings) == []


def test_missing_file_field_is_400(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/media", files={"other": ("a.txt", b"a", "text/plain")})
    assert response.status_code == 400
    assert "file" in response.json()["detail"]
    assert stored_files(settings) == []


def test_text_in_the_file_field_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/media", files={"dummy": ("x", b"", "text/plain")}, data={"file": "not a file"}
    )
    assert response.status_code == 400


def test_empty_file_name_is_400(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/media", files={"file": ("", b"abc", "application/octet-stream")})
    assert response.status_code == 400
    assert stored_files(settings) == []


def test_form_without_a_chosen_file_is_400_with_the_form(client: TestClient) -> None:
    response = client.post("/upload", files={"file": ("", b"", "application/octet-stream")})
    assert response.status_code == 400
    assert 'name="file"' in response.text


def test_name_that_sanitises_to_nothing_is_400(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/media", files={"file": ("../..", b"abc", "text/plain")})
    assert response.status_code == 400
    assert stored_files(settings) == []


def test_not_multipart_is_415(client: TestClient) -> None:
    response = client.post("/api/media", json={"file": "x"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


def test_malformed_multipart_is_400(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/api/media",
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 400
    assert stored_files(settings) == []


def test_hostile_names_are_kept_only_as_sanitised_metadata(
    client: TestClient, settings: Settings
) -> None:
    names = {"../../x": "x", "/etc/passwd": "passwd", "..\\..\\win.ini": "win.ini"}
    for raw, expected in names.items():
        media = upload(client, b"payload", filename=raw)
        assert media["filename"] == expected
    # Clients escape control characters; a raw body shows what a hostile one can send.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a\x1b[31mred\x07.txt"\r\n\r\npayload\r\n--b--\r\n'
    )
    response = client.post(
        "/api/media", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 201
    assert response.json()["items"][0]["filename"] == "a[31mred.txt"
    long_media = upload(client, b"payload", filename="n" * 5000 + ".txt")
    assert long_media["filename"].endswith(".txt")
    assert len(long_media["filename"].encode()) <= 255
    # Stored names are generated: nothing was written outside the objects directory.
    stored = (
        r"s3:library/[0-9a-f]{2}/[0-9a-f]{32}"
        if settings.storage == "s3"
        else r"objects/[0-9a-f]{2}/[0-9a-f]{32}"
    )
    for name in stored_files(settings):
        assert re.fullmatch(stored, name), name
    assert not (settings.media_dir.parent / "x").exists()


def test_script_in_a_name_is_escaped_on_every_page(client: TestClient) -> None:
    hostile = "<script>alert(1)</script>.mp4"
    media = upload(client, b"\x00\x00\x00\x18ftypmp42" + bytes(300), filename="x" + hostile)
    renamed = client.patch(f"/api/media/{media['id']}", json={"title": "<script>alert(2)</script>"})
    assert renamed.status_code == 200
    for path in ("/", "/?q=script", media["page_url"]):
        page = client.get(path)
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert" in page.text


def test_content_type_comes_from_the_bytes(client: TestClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    media = upload(client, png, filename="noext", content_type="text/plain")
    assert media["content_type"] == "image/png"
    assert media["kind"] == "image"
