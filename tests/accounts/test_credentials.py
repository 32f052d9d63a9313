"""Credentials against real ``streamport serve`` processes: API tokens in curl, aria2c and
ffprobe; tokens and accounts made with the real CLI; revocation reaching another worker;
sign-in throttling across workers; sessions ending on a password change; CSRF on a form."""

import hashlib
import re
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.config import Settings
from tests.conftest import LiveServer, attempt_login, provision, run_cli, start_server
from tests.media_samples import FFPROBE, Samples

# The servers' lookup cache: a revocation reaches another worker within twice this.
LOOKUP_CACHE_SECONDS = 0.5
# 2 × the cache time, plus room for a loaded 2-core machine.
REVOCATION_SECONDS = 1.5
PASSWORD = "correct horse battery"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with two worker processes, a SQLite catalog, a short lookup cache and no
    processing (the bytes served are the bytes uploaded)."""
    root = tmp_path_factory.mktemp("credentials")
    settings = Settings(
        _env_file=None,
        media_dir=root / "media",
        max_upload_bytes=64 * 2**20,
        processing_concurrency=0,
        lookup_cache_seconds=LOOKUP_CACHE_SECONDS,
    )
    live = start_server(settings, root / "server.log", workers=2)
    yield live
    live.stop()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _origin(server: LiveServer) -> dict[str, str]:
    return {"Origin": server.base_url}


def _get_fresh(server: LiveServer, path: str, **kwargs: Any) -> httpx2.Response:
    """One GET over a connection of its own, so successive calls may reach either worker."""
    return httpx2.get(server.base_url + path, timeout=30, **kwargs)


def _upload(server: LiveServer, token: str, path: Path, visibility: str) -> dict[str, Any]:
    with (
        httpx2.Client(base_url=server.base_url, headers=_bearer(token), timeout=60) as client,
        path.open("rb") as handle,
    ):
        response = client.post(
            "/api/media",
            data={"visibility": visibility},
            files={"file": (path.name, handle, "video/mp4")},
        )
    assert response.status_code == 201, response.text
    [media] = response.json()["items"]
    assert media["visibility"] == visibility
    return dict(media)


@contextmanager
def _sign_in(server: LiveServer, username: str, password: str) -> Iterator[httpx2.Client]:
    """A client holding a fresh session cookie."""
    with server.anonymous_client() as client:
        response = attempt_login(client, username, password)
        assert response.status_code == 303, response.text
        assert "streamport_session" in client.cookies
        yield client


def _catalog_value(settings: Settings, query: str, *params: object) -> object:
    """One value read straight from the server's SQLite catalog (read-only): how the test
    tells when a change was committed, whichever process made it."""
    path = settings.media_dir / "streamport.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        row = db.execute(query, params).fetchone()
    return None if row is None else row[0]


def _seconds_until_refused(
    server: LiveServer,
    headers: dict[str, str],
    change: Callable[[], object],
    committed: Callable[[], bool],
) -> float:
    """Run ``change`` in a thread while GET /api/me with ``headers`` is sent over and over, each
    time over a connection of its own (so both workers answer, their caches kept warm); return
    the seconds from the commit (``committed()`` polled before each request) to the first of
    10 answers in a row that are 401. Answers are 200 before the commit, 200 or 401 after."""
    worker = threading.Thread(target=change)
    committed_at: float | None = None
    before_commit: list[int] = []
    streak_start: float | None = None
    streak = 0
    started = time.monotonic()
    worker.start()
    try:
        while time.monotonic() - started < 60:
            polled = time.monotonic()
            if committed_at is None and committed():
                committed_at = polled
            sent = time.monotonic()
            status = _get_fresh(server, "/api/me", headers=headers).status_code
            assert status in (200, 401), status
            if committed_at is None:
                if status == 401:
                    # Committed between the poll and the request (or refused too early).
                    assert committed(), "refused before the change was committed"
                    committed_at = polled
                else:
                    before_commit.append(status)
            if status == 401:
                streak_start = sent if streak_start is None else streak_start
                streak += 1
            else:
                streak_start, streak = None, 0
            if streak >= 10 and not worker.is_alive():
                break
            time.sleep(0.02)
    finally:
        worker.join(timeout=120)
    assert committed_at is not None and streak_start is not None, "never refused"
    # The credential worked, and was cached, up to the change.
    assert before_commit, "no request was answered before the commit"
    return streak_start - committed_at


def _all_answer(server: LiveServer, path: str, headers: dict[str, str], status: int) -> None:
    """Ten GETs over fresh connections (both workers, most likely), all ``status``."""
    got = [_get_fresh(server, path, headers=headers).status_code for _ in range(10)]
    assert got == [status] * 10


# --------------------------------------------------------------------------- API tokens


def test_api_token_lets_curl_aria2c_and_ffprobe_fetch_a_private_video(
    server: LiveServer, samples: Samples, tmp_path: Path
) -> None:
    owner = _name("owner")
    token = provision(server.settings, owner)
    media = _upload(server, token, samples.mp4_faststart, "private")
    assert media["owner"] == owner
    stream_url = server.base_url + media["stream_url"]
    download_url = server.base_url + media["download_url"]
    auth = f"Authorization: Bearer {token}"

    fetched = tmp_path / "curl.mp4"
    done = subprocess.run(
        ["curl", "-s", "-S", "-f", "-H", auth, "-o", str(fetched), "-w", "%{http_code}",
         download_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "200"
    assert _sha256(fetched) == media["sha256"]

    subprocess.run(
        ["aria2c", "-q", "-x4", "-s4", "-k1M", f"--header={auth}", "--allow-overwrite=true",
         "--auto-file-renaming=false", "-d", str(tmp_path), "-o", "aria2c.mp4", download_url],
        check=True, timeout=120,
    )  # fmt: skip
    assert _sha256(tmp_path / "aria2c.mp4") == media["sha256"]
    # Segmented: aria2c asked for several ranges of this file with the token.
    ranges = server.log_path.read_text().count(f'"GET {media["download_url"]} HTTP/1.1" 206')
    assert ranges >= 2

    probe = subprocess.run(
        [FFPROBE, "-v", "error", "-headers", f"{auth}\r\n", "-show_entries", "format=duration",
         "-of", "csv=p=0", stream_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert abs(float(probe.stdout.strip()) - Samples.VIDEO_SECONDS) < 0.5

    for url in (stream_url, download_url, f"{server.base_url}/api/media/{media['id']}"):
        anonymous = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert anonymous.stdout == "404", url


# --------------------------------------------------------------------------- the CLI


def _token_id(account_page: str, label: str) -> str:
    """The id in the revoke form of the token labelled ``label`` on the account page."""
    found = re.findall(
        rf"<span>{re.escape(label)} <span class=\"muted\">.*?</span></span>\s*"
        r'<form method="post" action="[^"]*/account/tokens/(\d+)/revoke">',
        account_page,
        re.S,
    )
    assert len(found) == 1, account_page
    return str(found[0])


def test_cli_token_works_until_revoked_or_the_user_is_disabled_on_every_worker(
    server: LiveServer, tmp_path: Path
) -> None:
    name = _name("cli")
    added = run_cli(server.settings, tmp_path, "user", "add", name, "--password-stdin",
                 stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"added member {name}"

    created = run_cli(server.settings, tmp_path, "token", "create", name, "--label", "x")
    assert created.returncode == 0, created.stderr
    [token] = created.stdout.splitlines()
    assert re.fullmatch(r"sp_[A-Za-z0-9_-]{20,}", token), created.stdout
    assert created.stdout == token + "\n"
    # Both workers resolve (and cache) the token.
    for _ in range(10):
        me = _get_fresh(server, "/api/me", headers=_bearer(token))
        assert me.status_code == 200
        assert me.json() == {"username": name, "is_admin": False}

    # Revoked from the account page: 401 everywhere within 2 × the cache time.
    with _sign_in(server, name, PASSWORD) as browser:
        page = browser.get("/account")
        assert page.status_code == 200
        token_id = _token_id(page.text, "x")
        [csrf] = _CSRF_FIELD.findall(page.text)[:1]
        answers: list[httpx2.Response] = []

        def revoke() -> None:
            time.sleep(0.3)  # both workers answer (and cache) the token meanwhile
            answers.append(
                browser.post(
                    f"/account/tokens/{token_id}/revoke",
                    data={"csrf_token": csrf},
                    headers=_origin(server),
                )
            )

        def revoked() -> bool:
            query = "SELECT count(*) FROM api_tokens WHERE id = ?"
            return _catalog_value(server.settings, query, int(token_id)) == 0

        latency = _seconds_until_refused(server, _bearer(token), revoke, revoked)
        assert [a.status_code for a in answers] == [303]
        assert latency <= REVOCATION_SECONDS
        assert f"/account/tokens/{token_id}/revoke" not in browser.get("/account").text
    refused = _get_fresh(server, "/api/me", headers=_bearer(token))
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/json")

    # A second token, then the account disabled by another process (the CLI): neither worker
    # was told; both stop accepting the token within 2 × the cache time.
    second = run_cli(server.settings, tmp_path, "token", "create", name).stdout.strip()
    _all_answer(server, "/api/me", _bearer(second), 200)
    results: list[subprocess.CompletedProcess[str]] = []

    def disable() -> None:
        results.append(run_cli(server.settings, tmp_path, "user", "disable", name))

    def disabled() -> bool:
        query = "SELECT disabled FROM users WHERE username = ?"
        return bool(_catalog_value(server.settings, query, name))

    latency = _seconds_until_refused(server, _bearer(second), disable, disabled)
    [done] = results
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"disabled {name}"
    assert latency <= REVOCATION_SECONDS
    _all_answer(server, "/api/me", _bearer(second), 401)


# --------------------------------------------------------------------------- sign-in


def _attempt_login(server: LiveServer, username: str, password: str) -> httpx2.Response:
    """One sign-in from a new client: new connections, its own CSRF cookie and token."""
    with server.anonymous_client() as client:
        return attempt_login(client, username, password)


def test_login_throttle_counts_failures_of_every_worker(server: LiveServer) -> None:
    name = _name("throttled")
    provision(server.settings, name, password=PASSWORD)
    for attempt in range(5):
        response = _attempt_login(server, name, f"wrong password {attempt}")
        assert response.status_code == 401, (attempt, response.text)
        assert "streamport_session" not in response.cookies
    # Right password, sixth attempt: still refused, and told when to come back.
    response = _attempt_login(server, name, PASSWORD)
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60 + 1
    assert "streamport_session" not in response.cookies
    # Another account from the same address is not locked out by these five.
    other = _name("neighbour")
    provision(server.settings, other, password=PASSWORD)
    assert _attempt_login(server, other, PASSWORD).status_code == 303


def test_guessing_the_current_password_is_throttled_like_sign_in(server: LiveServer) -> None:
    # A stolen session cannot try passwords on the account page instead of the login form.
    name = _name("hijacked")
    provision(server.settings, name, password=PASSWORD)
    query = "SELECT password_hash FROM users WHERE username = ?"
    password_hash = _catalog_value(server.settings, query, name)
    with _sign_in(server, name, PASSWORD) as thief:
        [csrf] = _CSRF_FIELD.findall(thief.get("/account").text)[:1]

        def change(current: str) -> httpx2.Response:
            fields = {"current_password": current, "new_password": "taken over for good"}
            fields |= {"new_password_again": "taken over for good", "csrf_token": csrf}
            return thief.post("/account/password", data=fields, headers=_origin(server))

        for attempt in range(5):
            assert change(f"guess {attempt}").status_code == 422, attempt
        refused = change(PASSWORD)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0
    # The password did not change, and the account's sign-in waits out the same window.
    assert _catalog_value(server.settings, query, name) == password_hash
    assert _attempt_login(server, name, PASSWORD).status_code == 429


def test_password_change_ends_the_other_sessions(server: LiveServer) -> None:
    name = _name("mover")
    provision(server.settings, name, password=PASSWORD)
    with _sign_in(server, name, PASSWORD) as a, _sign_in(server, name, PASSWORD) as b:
        cookie_a = a.cookies["streamport_session"]
        cookie_b = b.cookies["streamport_session"]
        assert cookie_a != cookie_b
        for cookie in (cookie_a, cookie_b):
            _all_answer(server, "/api/me", {"Cookie": f"streamport_session={cookie}"}, 200)

        page = a.get("/account")
        [csrf] = _CSRF_FIELD.findall(page.text)[:1]
        new_password = "a different passphrase"
        old_hash = _catalog_value(
            server.settings, "SELECT password_hash FROM users WHERE username = ?", name
        )
        answers: list[httpx2.Response] = []

        def change_password() -> None:
            time.sleep(0.3)  # both workers answer (and cache) B's session meanwhile
            fields = {"current_password": PASSWORD, "new_password": new_password}
            fields |= {"new_password_again": new_password, "csrf_token": csrf}
            answers.append(a.post("/account/password", data=fields, headers=_origin(server)))

        def changed() -> bool:
            query = "SELECT password_hash FROM users WHERE username = ?"
            return _catalog_value(server.settings, query, name) != old_hash

        header_b = {"Cookie": f"streamport_session={cookie_b}"}
        latency = _seconds_until_refused(server, header_b, change_password, changed)
        [answer] = answers
        assert answer.status_code == 303, answer.text
        # B's session ends on every worker within 2 × the cache time; A's old one has too.
        assert latency <= REVOCATION_SECONDS
        new_cookie_a = a.cookies["streamport_session"]
        assert new_cookie_a not in (cookie_a, cookie_b)
        _all_answer(server, "/api/me", {"Cookie": f"streamport_session={cookie_a}"}, 401)
        assert b.get("/api/me").status_code == 401
        me = a.get("/api/me")
        assert me.status_code == 200
        assert me.json()["username"] == name
        _all_answer(server, "/api/me", {"Cookie": f"streamport_session={new_cookie_a}"}, 200)
    # The new password signs in; the old one no longer does.
    assert _attempt_login(server, name, PASSWORD).status_code == 401
    with _sign_in(server, name, new_password):
        pass


def test_session_cookie_without_csrf_token_cannot_rename(
    server: LiveServer, samples: Samples
) -> None:
    name = _name("renamer")
    token = provision(server.settings, name, password=PASSWORD)
    media = _upload(server, token, samples.mp3, "private")
    title = media["title"]
    path = f"/media/{media['id']}/rename"
    with _sign_in(server, name, PASSWORD) as browser:
        # The cookie alone, with and without a same-origin Origin: refused, nothing changes.
        for headers in ({}, _origin(server)):
            refused = browser.post(path, data={"title": "Renamed by another site"}, headers=headers)
            assert refused.status_code == 403, refused.text
        # A token of another session does not do either.
        with _sign_in(server, name, PASSWORD) as other:
            [foreign] = _CSRF_META.findall(other.get(f"/media/{media['id']}").text)
        refused = browser.post(
            path,
            data={"title": "Renamed by another site", "csrf_token": foreign},
            headers=_origin(server),
        )
        assert refused.status_code == 403, refused.text
        assert browser.get(f"/api/media/{media['id']}").json()["title"] == title
        assert (
            _get_fresh(server, f"/api/media/{media['id']}", headers=_bearer(token)).json()["title"]
            == title
        )

        # The same request with the page's token goes through (what made the others fail).
        [csrf] = _CSRF_META.findall(browser.get(f"/media/{media['id']}").text)
        renamed = browser.post(
            path, data={"title": "Renamed here", "csrf_token": csrf}, headers=_origin(server)
        )
        assert renamed.status_code == 303, renamed.text
        assert browser.get(f"/api/media/{media['id']}").json()["title"] == "Renamed here"
