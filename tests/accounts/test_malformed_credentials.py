"""Malformed credentials and ids from a hostile client get a clear 4xx, never a 500: signed
tokens with characters outside ASCII (in a share link, a ``share`` query, a session cookie
planted by a sibling site), an ``Origin`` that is not a URL, and ids past any integer column."""

from collections.abc import Iterator

import pytest

from app.config import Settings
from tests.conftest import LiveServer, attempt_login, provision, start_server, upload

PASSWORD = "correct horse battery"
HUGE = "99999999999999999999999"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("malformed-credentials")
    settings = Settings(_env_file=None, media_dir=root / "media", processing_concurrency=0)
    live = start_server(settings, root / "server.log")
    yield live
    live.stop()


def test_signed_tokens_outside_ascii_are_just_wrong(server: LiveServer) -> None:
    with server.client() as owner:
        media = upload(owner, b"private bytes", filename="diary.txt")
    with server.anonymous_client() as anonymous:
        assert anonymous.get("/s/%C3%A9.%C3%A9").status_code == 404
        assert anonymous.get(media["stream_url"] + "?share=x.%C3%A9").status_code == 404
        planted = {"Cookie": b"streamport_session=x.\xe9\xe9"}
        assert anonymous.get("/healthz", headers=planted).status_code == 200
        assert anonymous.get("/", headers=planted).status_code == 200


def test_an_origin_that_is_not_a_url_is_another_site(server: LiveServer) -> None:
    with server.anonymous_client() as anonymous:
        response = anonymous.post(
            "/login", data={"username": "x", "password": "y"}, headers={"Origin": "http://[::1"}
        )
        assert response.status_code == 403


def test_ids_past_any_integer_column_are_refused(server: LiveServer) -> None:
    with server.client() as admin:
        assert admin.post(f"/admin/users/{HUGE}/disable").status_code == 422
        assert admin.post("/admin/users/0/disable").status_code == 422
    provision(server.settings, "member", password=PASSWORD)
    with server.anonymous_client() as member:
        assert attempt_login(member, "member", PASSWORD).status_code == 303
        page = member.get("/account")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = member.post(
            f"/account/tokens/{HUGE}/revoke",
            data={"csrf_token": token},
            headers={"Origin": server.base_url},
        )
        assert response.status_code == 422, response.text


@pytest.fixture(autouse=True)
def _no_server_errors(server: LiveServer) -> Iterator[None]:
    start = server.log_path.stat().st_size
    yield
    with server.log_path.open("rb") as log:
        log.seek(start)
        assert b"Traceback" not in log.read()
