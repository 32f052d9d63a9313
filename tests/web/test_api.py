"""The JSON API: listing, search, pagination, rename, delete, errors."""

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import LiveServer, stored_files, upload

MEDIA_FIELDS = {
    "id",
    "title",
    "filename",
    "content_type",
    "size",
    "sha256",
    "created_at",
    "page_url",
    "stream_url",
    "download_url",
}


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_media_has_the_contract_fields(client: TestClient) -> None:
    media = upload(client, b"abc", filename="a.txt")
    assert MEDIA_FIELDS <= media.keys()
    assert media["created_at"].endswith("Z") or media["created_at"].endswith("+00:00")
    assert media["page_url"] == f"/media/{media['id']}"


def test_list_is_newest_first_and_paged(client: TestClient) -> None:
    ids = [upload(client, bytes([i]), filename=f"f{i}.bin")["id"] for i in range(5)]
    first = client.get("/api/media", params={"per_page": 2}).json()
    assert first["total"] == 5
    assert first["page"] == 1 and first["per_page"] == 2
    assert [m["id"] for m in first["items"]] == ids[::-1][:2]
    third = client.get("/api/media", params={"per_page": 2, "page": 3}).json()
    assert [m["id"] for m in third["items"]] == ids[::-1][4:]
    beyond = client.get("/api/media", params={"per_page": 2, "page": 9}).json()
    assert beyond["items"] == [] and beyond["total"] == 5


def test_search_matches_title_and_filename(client: TestClient) -> None:
    upload(client, b"1", filename="beach.mp4", title="Summer holiday")
    upload(client, b"2", filename="mountain.mp4", title="Winter")
    upload(client, b"3", filename="100%_done.txt")

    def titles(q: str) -> list[str]:
        return sorted(m["title"] for m in client.get("/api/media", params={"q": q}).json()["items"])

    assert titles("holiday") == ["Summer holiday"]
    assert titles("MOUNTAIN") == ["Winter"]
    assert titles("summer beach") == ["Summer holiday"]
    assert titles("summer winter") == []
    assert titles("%") == ["100%_done"]
    assert titles("_") == ["100%_done"]


def test_invalid_paging_is_422_json(client: TestClient) -> None:
    response = client.get("/api/media", params={"page": 0})
    assert response.status_code == 422
    assert "page" in response.json()["detail"]
    assert client.get("/api/media", params={"per_page": 1000}).status_code == 422


def test_rename(client: TestClient) -> None:
    media = upload(client, b"abc", filename="a.txt")
    response = client.patch(f"/api/media/{media['id']}", json={"title": "  New\tname "})
    assert response.status_code == 200
    assert response.json()["title"] == "New name"
    assert client.get(f"/api/media/{media['id']}").json()["title"] == "New name"


def test_rename_refuses_blank_and_too_long(client: TestClient) -> None:
    media = upload(client, b"abc", filename="a.txt")
    for body in ({"title": "   "}, {"title": "x" * 501}, {}, {"title": 5}):
        response = client.patch(f"/api/media/{media['id']}", json=body)
        assert response.status_code == 422, body
        assert isinstance(response.json()["detail"], str)
    assert client.get(f"/api/media/{media['id']}").json()["title"] == "a"


def test_delete_removes_row_and_bytes(client: TestClient, settings: Settings) -> None:
    media = upload(client, b"abc", filename="a.txt")
    assert len(stored_files(settings)) == 1
    response = client.delete(f"/api/media/{media['id']}")
    assert response.status_code == 204
    assert stored_files(settings) == []
    assert client.get(f"/api/media/{media['id']}").status_code == 404
    assert client.get(media["stream_url"]).status_code == 404


def test_unknown_ids_are_404_json(client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/media/nope"),
        ("PATCH", "/api/media/nope"),
        ("DELETE", "/api/media/nope"),
    ]:
        response = client.request(method, path, json={"title": "x"})
        assert response.status_code == 404, path
        assert response.json() == {"detail": "No such media."}


def test_unknown_api_path_is_404_json(client: TestClient) -> None:
    response = client.get("/api/nothing")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/media" in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/api/media"]["post"]["requestBody"]["content"]


def test_racing_renames_and_deletes_answer_404_not_500(live_server: LiveServer) -> None:
    with live_server.client() as client:
        ids = [upload(client, f"file {i}".encode(), filename=f"{i}.txt")["id"] for i in range(20)]

    def act(request: tuple[str, str]) -> tuple[str, int]:
        verb, media_id = request
        with live_server.client() as client:
            if verb == "rename":
                return verb, client.patch(f"/api/media/{media_id}", json={"title": "x"}).status_code
            return verb, client.delete(f"/api/media/{media_id}").status_code

    requests = [(verb, i) for i in ids for verb in ("rename", "delete", "delete")]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(act, requests))
    assert {status for verb, status in results if verb == "rename"} <= {200, 404}
    deletes = [status for verb, status in results if verb == "delete"]
    assert set(deletes) <= {204, 404}
    assert deletes.count(204) == len(ids)  # each media deleted once, the loser told 404
