"""The HTML pages: catalog, search, pagination, upload form, media page, rename, delete."""

import re

from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import stored_files, upload

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(300)
MP3 = b"ID3" + bytes(300)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def test_empty_catalog_invites_an_upload(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert 'href="/upload"' in page.text


def test_catalog_lists_uploads_with_size_and_type(client: TestClient) -> None:
    upload(client, MP4 + bytes(2048), filename="clip.mp4", title="Holiday clip")
    page = client.get("/")
    assert "Holiday clip" in page.text
    assert "2.3 KiB" in page.text
    assert "video" in page.text.lower()


def test_catalog_search_narrows(client: TestClient) -> None:
    upload(client, b"a", filename="alpha.txt")
    upload(client, b"b", filename="beta.txt")
    page = client.get("/", params={"q": "alpha"})
    assert "alpha" in page.text
    assert "beta" not in page.text


def test_catalog_paginates(client: TestClient) -> None:
    for i in range(30):
        upload(client, bytes([i]), filename=f"item{i:02d}.bin")
    first = client.get("/")
    second = client.get("/", params={"page": 2})
    assert "item29" in first.text and "item06" in first.text and "item05" not in first.text
    assert "item05" in second.text and "item00" in second.text and "item29" not in second.text
    assert 'href="/?page=2' in first.text or "page=2" in first.text


def test_catalog_page_number_out_of_range_is_422_html(client: TestClient) -> None:
    page = client.get("/", params={"page": "zero"})
    assert page.status_code == 422
    assert "text/html" in page.headers["content-type"]


def test_upload_form_works_without_javascript(client: TestClient) -> None:
    page = client.get("/upload")
    assert page.status_code == 200
    form = re.search(r"<form[^>]*enctype=\"multipart/form-data\"[^>]*>", page.text)
    assert form is not None
    assert 'method="post"' in form.group(0)
    assert re.search(
        r'<input[^>]*type="file"[^>]*name="file"[^>]*multiple', page.text
    ) or re.search(r'<input[^>]*name="file"[^>]*type="file"[^>]*multiple', page.text)


def test_video_page_has_player(client: TestClient) -> None:
    media = upload(client, MP4, filename="clip.mp4")
    page = client.get(media["page_url"])
    assert page.status_code == 200
    assert re.search(
        rf'<video[^>]*controls[^>]*src="{media["stream_url"]}"', page.text
    ) or re.search(rf'<video[^>]*src="{media["stream_url"]}"[^>]*controls', page.text)
    assert 'preload="metadata"' in page.text
    assert media["download_url"] in page.text
    assert media["sha256"] in page.text


def test_audio_and_image_pages(client: TestClient) -> None:
    audio = upload(client, MP3, filename="song.mp3")
    image = upload(client, PNG, filename="pic.png")
    assert "<audio" in client.get(audio["page_url"]).text
    assert re.search(rf'<img[^>]*src="{image["stream_url"]}"', client.get(image["page_url"]).text)


def test_rename_form(client: TestClient) -> None:
    media = upload(client, b"abc", filename="a.txt")
    response = client.post(
        f"/media/{media['id']}/rename", data={"title": "Renamed"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == media["page_url"]
    assert "Renamed" in client.get(media["page_url"]).text


def test_delete_form(client: TestClient, settings: Settings) -> None:
    media = upload(client, b"abc", filename="a.txt")
    response = client.post(f"/media/{media['id']}/delete", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert stored_files(settings) == []
    assert client.get(media["page_url"]).status_code == 404


def test_unknown_media_page_is_a_friendly_404(client: TestClient) -> None:
    page = client.get("/media/doesnotexist")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "No such media" in page.text
    assert 'href="/"' in page.text


def test_unknown_path_is_html_404(client: TestClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]


def test_static_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
