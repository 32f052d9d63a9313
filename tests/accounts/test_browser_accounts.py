"""Accounts in a real browser (Debian's Chromium driven by Playwright): the first start's setup
link, a member's private upload, share links opened by someone without an account, and a page
of another site that tries to act with the signed-in victim's cookie."""

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, sync_playwright

from app.config import Settings
from tests.conftest import LiveServer, free_port, provision, start_server
from tests.media_samples import Samples
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

T = TypeVar("T")

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
SETUP_URL = re.compile(r"http://127\.0\.0\.1:\d+/setup\?token=\S+")
MEDIA_URL = re.compile(r".*/media/[A-Za-z0-9_-]+$")


# Module scope: Playwright's sync API keeps an event loop running in this thread (see
# tests/test_browser.py); for the same reason ``provision`` (asyncio.run) runs in a thread.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context
    context.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with an admin for the share and cross-site tests; each adds a user of its
    own and looks only at that user's media."""
    root = tmp_path_factory.mktemp("accounts-browser")
    live = _off_loop(start_server, _settings(root), root / "server.log")
    yield live
    live.stop()


def _settings(tmp_path: Path) -> Settings:
    """As the ``settings`` fixture's SQLite run, but room for the 25 MB sample video and no
    processing (no test here needs a poster)."""
    return Settings(
        _env_file=None,
        media_dir=tmp_path / "media",
        max_upload_bytes=64 * 2**20,
        processing_concurrency=0,
    )


def _off_loop(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``work`` (which calls asyncio.run) in a thread of its own, away from Playwright's
    event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work, *args, **kwargs).result()


def _wait_until(page: Page, expression: str, arg: Any = None, timeout: float = 30.0) -> None:
    """Poll ``expression`` through ``page.evaluate`` (the pages' CSP refuses the string
    evaluation ``page.wait_for_function`` would do)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def _csrf_of(html: str) -> str:
    found = CSRF_META.search(html)
    assert found is not None, html[:500]
    return found.group(1)


def _sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/login")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_url(base_url + "/")
    assert page.locator("#user-menu-button").inner_text().strip() == username


def _sign_out(page: Page, base_url: str) -> None:
    page.click("#user-menu-button")
    page.click("#logout-button")
    page.wait_for_url(base_url + "/")
    assert page.locator("#login-link").is_visible()
    assert page.locator("#user-menu").count() == 0


def _user_names(settings: Settings) -> list[tuple[str, bool]]:
    from app.accounts import provisioning

    def work() -> list[tuple[str, bool]]:
        return sorted(
            (u.username, u.is_admin) for u in asyncio.run(provisioning.list_users(settings))
        )

    return _off_loop(work)


# ---------------------------------------------------------------------------------------------
# 1. The first start: the console's setup link, then a member's private upload.


def test_setup_link_then_member_uploads_a_private_video(
    context: BrowserContext, samples: Samples, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    server = start_server(settings, tmp_path / "server.log", admin=False)
    try:
        [setup_url] = SETUP_URL.findall(server.log_path.read_text())
        token = setup_url.split("token=", 1)[1]
        assert setup_url.startswith(server.base_url + "/setup?token=")

        # Without the token, or with a wrong one, nothing opens and nothing changes.
        with server.anonymous_client() as anonymous:
            assert anonymous.get("/setup").status_code == 403
            assert anonymous.get("/setup?token=wrong-token").status_code == 403
            assert anonymous.get(f"/setup?token={token}x").status_code == 403
            csrf = _csrf_of(anonymous.get("/login").text)
            for wrong in ("", "wrong-token", token[:-1]):
                response = anonymous.post(
                    "/setup",
                    data={
                        "csrf_token": csrf,
                        "token": wrong,
                        "username": "mallory",
                        "password": "mallory-password",
                        "password_again": "mallory-password",
                    },
                )
                assert response.status_code == 403, (wrong, response.text)
                assert "streamport_session" not in response.cookies
            # The right token without the page's CSRF token (another site's form): refused,
            # and the token is not used up by it.
            response = anonymous.post(
                "/setup",
                data={
                    "token": token,
                    "username": "mallory",
                    "password": "mallory-password",
                    "password_again": "mallory-password",
                },  # fmt: skip
            )
            assert response.status_code == 403
            login_page = anonymous.get("/login")
            assert "There is no account yet" in login_page.text
            assert anonymous.get("/api/me").status_code == 401
            assert anonymous.get(f"/setup?token={token}").status_code == 200
        assert _user_names(settings) == []

        # The console's link in a browser: the first admin, signed in at once.
        page = context.new_page()
        response = page.goto(setup_url)
        assert response is not None and response.status == 200
        page.fill("#setup-username", "root-admin")
        page.fill("#setup-password", "admin-password-1")
        page.fill("#setup-password-again", "admin-password-1")
        page.click("#setup-submit")
        page.wait_for_url(server.base_url + "/")
        assert page.locator("#user-menu-button").inner_text().strip() == "root-admin"

        # The admin adds a member.
        page.goto(server.base_url + "/admin/users")
        page.fill("#new-username", "member1")
        page.fill("#new-user-password", "member-password-1")
        page.click("#add-user-form button[type=submit]")
        page.wait_for_url(server.base_url + "/admin/users")
        row = page.locator("#user-table tr", has_text="member1")
        assert row.count() == 1
        assert "Member" in row.inner_text()
        _sign_out(page, server.base_url)

        # The member signs in and uploads a private video.
        _sign_in(page, server.base_url, "member1", "member-password-1")
        page.goto(server.base_url + "/upload")
        page.set_input_files("#file-input", str(samples.mp4_faststart))
        page.select_option("#visibility-input", "private")
        page.click("#upload-submit")
        page.wait_for_url(MEDIA_URL, timeout=60_000)
        media_url = page.url
        assert "web clip" in page.locator("#media-title").inner_text()
        assert (page.locator("#media-visibility").text_content() or "").strip() == "Private"
        assert page.locator("#media-owner").inner_text().strip() == "member1"
        _wait_until(page, "document.querySelector('#media-player').readyState >= 1")
        media_id = media_url.rsplit("/", 1)[1]
        _sign_out(page, server.base_url)

        # Signed out, the private video is not there at all.
        response = page.goto(media_url)
        assert response is not None and response.status == 404
        with server.anonymous_client() as anonymous:
            for path in (f"/api/media/{media_id}", f"/media/{media_id}/stream",
                         f"/media/{media_id}/download"):  # fmt: skip
                assert anonymous.get(path).status_code == 404, path
            assert media_id not in anonymous.get("/api/media").text

        # The setup link works once only.
        response = page.goto(setup_url)
        assert response is not None and response.status == 403
        assert page.get_by_text("Setup is finished").is_visible()
        with server.anonymous_client() as anonymous:
            csrf = _csrf_of(anonymous.get("/login").text)
            response = anonymous.post(
                "/setup",
                data={"csrf_token": csrf, "token": token, "username": "late-admin",
                      "password": "late-password-1", "password_again": "late-password-1"},
            )  # fmt: skip
            assert response.status_code == 403
        assert _user_names(settings) == [("member1", False), ("root-admin", True)]
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# 2. A share link, opened by someone with no account and no cookie.


def test_share_link_plays_seeks_and_downloads_in_a_fresh_browser(
    browser: Browser, server: LiveServer, samples: Samples
) -> None:
    owner_token = _off_loop(provision, server.settings, "owner")
    friend = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        owner = server.anonymous_client(headers={"Authorization": f"Bearer {owner_token}"})
        with owner, samples.mp4_faststart.open("rb") as handle:
            response = owner.post(
                "/api/media",
                files={"file": (samples.mp4_faststart.name, handle, "video/mp4")},
                data={"visibility": "private"},
            )
            assert response.status_code == 201, response.text
            media = response.json()["items"][0]
            assert media["visibility"] == "private" and media["owner"] == "owner"
            response = owner.post(f"/api/media/{media['id']}/shares", json={"note": "for Ann"})
            assert response.status_code == 201, response.text
            share_url = response.json()["url"]
            response = owner.post(f"/api/media/{media['id']}/shares", json={"expires_in": 1})
            assert response.status_code == 201, response.text
            expiring_url = response.json()["url"]
            expiring_made = time.monotonic()
        assert share_url.startswith(server.base_url + "/s/")
        share_token = share_url.rsplit("/", 1)[1]

        page = friend.new_page()
        assert friend.cookies() == []
        # Without the link, the friend finds nothing.
        response = page.goto(server.base_url + media["page_url"])
        assert response is not None and response.status == 404

        response = page.goto(share_url)
        assert response is not None and response.status == 200
        assert page.locator("#shared-notice").is_visible()
        assert "web clip" in page.locator("#media-title").inner_text()
        player = page.locator("#media-player")
        assert f"share={share_token}" in (player.get_attribute("src") or "")
        _wait_until(page, "document.querySelector('#media-player').readyState >= 1")
        duration = player.evaluate("v => v.duration")
        assert abs(duration - Samples.VIDEO_SECONDS) <= 0.5
        player.evaluate("v => v.play()")
        _wait_until(page, "document.querySelector('#media-player').currentTime > 0.3")
        target = duration * 2 / 3
        player.evaluate(
            """(v, t) => new Promise((resolve, reject) => {
                v.addEventListener('seeked', () => resolve(), {once: true});
                v.addEventListener('error', () => reject(v.error && v.error.message), {once: true});
                v.currentTime = t;
            })""",
            target,
        )
        assert abs(player.evaluate("v => v.currentTime") - target) < 1.5
        assert player.evaluate("v => v.error") is None

        for link in ("#stream-link", "#media-stream-url"):
            assert f"share={share_token}" in (page.locator(link).get_attribute("href") or ""), link
        og_title = page.locator('meta[property="og:title"]').get_attribute("content")
        assert og_title is not None and "web clip" in og_title
        download = page.locator(".media-actions #download-link").get_attribute("href")
        assert download is not None and f"share={share_token}" in download
        fetch = (
            "async url => { const r = await fetch(url); await r.arrayBuffer(); return r.status; }"
        )
        assert page.evaluate(fetch, download) == 200
        assert page.evaluate(fetch, download.split("?", 1)[0]) == 404
        assert not any(c["name"] == "streamport_session" for c in friend.cookies())

        # An expired link says so, clearly: opened at least 2 s after it was made (a wait
        # mostly over already: the playing and seeking above take about as long).
        time.sleep(max(0.0, expiring_made + 2.0 - time.monotonic()))
        response = page.goto(expiring_url)
        assert response is not None and response.status == 410
        notice = page.get_by_text("This share link has expired")
        assert notice.is_visible()
        assert "expired" in page.locator("main").inner_text()
        expired_token = expiring_url.rsplit("/", 1)[1]
        assert page.evaluate(fetch, f"{download.split('?', 1)[0]}?share={expired_token}") == 404
    finally:
        friend.close()


# ---------------------------------------------------------------------------------------------
# 3. Another site's page, opened by the signed-in victim.


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def attacker_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A static site on another origin (``localhost``, where the victim is on 127.0.0.1):
    the directory it serves and its base URL."""
    root = tmp_path / "attacker"
    root.mkdir()
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://localhost:{port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


ATTACK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Win a prize</title></head>
<body><h1>Congratulations!</h1>
<script>
const V = "%(victim)s";
const IDS = %(ids)s;
let pending = 0;
let frames = 0;
const results = [];

function postForm(action, fields, withFile) {
  const name = "target" + (frames += 1);
  const frame = document.createElement("iframe");
  frame.name = name;
  document.body.append(frame);
  const form = document.createElement("form");
  form.method = "post";
  form.action = V + action;
  form.target = name;
  if (withFile) form.enctype = "multipart/form-data";
  for (const [key, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = key;
    input.value = value;
    form.append(input);
  }
  if (withFile) {
    const input = document.createElement("input");
    input.type = "file";
    input.name = "file";
    const transfer = new DataTransfer();
    transfer.items.add(new File(["evil bytes"], "evil.txt", {type: "text/plain"}));
    input.files = transfer.files;
    form.append(input);
  }
  document.body.append(form);
  pending += 1;
  frame.addEventListener("load", () => { pending -= 1; }, {once: true});
  form.submit();
}

async function tryFetch(label, path, init) {
  try {
    const response = await fetch(V + path, {credentials: "include", ...init});
    results.push([label, response.type, response.status]);
  } catch (error) {
    results.push([label, "error", String(error)]);
  }
}

function evilForm() {
  const data = new FormData();
  data.append("visibility", "public");
  data.append("title", "pwned upload");
  data.append("file", new Blob(["evil bytes"], {type: "text/plain"}), "evil.txt");
  return data;
}

async function attack() {
  for (const id of IDS) {
    postForm(`/media/${id}/rename`, {title: "pwned"});
    postForm(`/media/${id}/visibility`, {visibility: "public"});
    postForm(`/media/${id}/shares`, {expires: "never", note: "evil"});
    postForm(`/media/${id}/delete`, {csrf_token: "guess"});
  }
  postForm("/upload", {visibility: "public", title: "pwned upload"}, true);
  postForm("/upload?csrf_token=guess", {visibility: "public"}, true);
  postForm("/logout", {});
  const fetches = [
    tryFetch("upload no-cors", "/api/media", {method: "POST", mode: "no-cors", body: evilForm()}),
    tryFetch("upload cors", "/api/media", {method: "POST", mode: "cors", body: evilForm()}),
  ];
  for (const id of IDS) {
    const json = JSON.stringify({title: "pwned", visibility: "public"});
    const share = JSON.stringify({note: "evil"});
    fetches.push(
      tryFetch("patch no-cors", `/api/media/${id}`, {method: "PATCH", mode: "no-cors", body: json}),
      tryFetch("patch cors", `/api/media/${id}`, {method: "PATCH", mode: "cors", body: json,
                                                  headers: {"Content-Type": "application/json"}}),
      tryFetch("delete no-cors", `/api/media/${id}`, {method: "DELETE", mode: "no-cors"}),
      tryFetch("delete cors", `/api/media/${id}`, {method: "DELETE", mode: "cors"}),
      tryFetch("share no-cors", `/api/media/${id}/shares`,
               {method: "POST", mode: "no-cors", body: share,
                headers: {"Content-Type": "text/plain"}}),
      tryFetch("share cors", `/api/media/${id}/shares`,
               {method: "POST", mode: "cors", body: share,
                headers: {"Content-Type": "application/json"}}),
    );
  }
  await Promise.all(fetches);
  while (pending > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  window.attackResults = results;
  window.attackDone = true;
}
attack();
</script></body></html>
"""


def _snapshot(server: LiveServer, token: str, ids: list[str]) -> dict[str, Any]:
    """What an attack could change: the victim's media (title, visibility), their count,
    their share links, and the whole listing."""
    with server.anonymous_client(headers={"Authorization": f"Bearer {token}"}) as owner:
        items = owner.get("/api/media").json()["items"]
        shares = {i: owner.get(f"/api/media/{i}/shares").json() for i in ids}
    with server.client() as admin:
        admin_items = admin.get("/api/media").json()["items"]
        details = {i: admin.get(f"/api/media/{i}").json() for i in ids}
    return {
        "own": sorted((m["id"], m["title"], m["visibility"]) for m in items),
        "admin_listing": sorted(m["id"] for m in admin_items),
        "details": {i: (d["title"], d["visibility"], d["owner"]) for i, d in details.items()},
        "shares": shares,
    }


def test_another_site_cannot_act_with_the_victims_session(
    context: BrowserContext, server: LiveServer, attacker_site: tuple[Path, str]
) -> None:
    victim_token = _off_loop(provision, server.settings, "victim", password="victim-password-1")
    ids = []
    with server.anonymous_client(headers={"Authorization": f"Bearer {victim_token}"}) as c:
        for title, visibility in (("Holiday", "public"), ("Diary", "private")):
            response = c.post(
                "/api/media",
                files={"file": (f"{title}.txt", b"mine", "text/plain")},
                data={"title": title, "visibility": visibility},
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["items"][0]["id"])
    before = _snapshot(server, victim_token, ids)
    assert before["own"] == sorted([(ids[0], "Holiday", "public"), (ids[1], "Diary", "private")])
    assert before["shares"] == {i: [] for i in ids}

    page = context.new_page()
    _sign_in(page, server.base_url, "victim", "victim-password-1")
    [session_cookie] = [c for c in context.cookies() if c["name"] == "streamport_session"]
    assert session_cookie["sameSite"] == "Lax" and session_cookie["httpOnly"]
    page.goto(server.base_url + f"/media/{ids[0]}")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf

    # The victim visits the other site, whose page posts forms and fetches at once.
    root, attacker = attacker_site
    (root / "index.html").write_text(
        ATTACK_PAGE % {"victim": server.base_url, "ids": repr(ids).replace("'", '"')}
    )
    seen: list[tuple[str, str, int]] = []

    def on_response(response: Response) -> None:
        if response.url.startswith(server.base_url):
            seen.append((response.request.method, response.url, response.status))

    context.on("response", on_response)
    response = page.goto(attacker + "/index.html")
    assert response is not None and response.status == 200
    _wait_until(page, "window.attackDone === true")
    time.sleep(0.5)  # any straggler reaches the server
    context.remove_listener("response", on_response)
    posts = [(m, u, s) for m, u, s in seen if m == "POST"]
    # Every form (10) and the no-cors POSTs (1 upload + 2 shares) did reach the server...
    assert len(posts) >= 13, seen
    # ...and each was refused.
    assert all(s in (401, 403, 404) for _, _, s in posts), posts
    assert not [x for x in seen if x[0] in ("PATCH", "DELETE")], seen

    assert _snapshot(server, victim_token, ids) == before
    # The victim is still signed in (the forged sign-out did nothing either).
    page.goto(server.base_url + "/")
    assert page.locator("#user-menu-button").inner_text().strip() == "victim"

    # Now as if the cookie travelled anyway (an old browser, a SameSite bypass): the
    # server itself must refuse a request from another site, even with the right token.
    cookies = {"streamport_session": session_cookie["value"]}
    foreign = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    public_id, private_id = ids
    with server.anonymous_client(cookies=cookies) as victim:
        assert victim.get("/api/me").json() == {"username": "victim", "is_admin": False}
        refused: list[tuple[str, str, dict[str, Any]]] = []
        for media_id in ids:
            for headers in (
                foreign,
                {"Origin": "http://evil.example"},
                {"Origin": "null"},
                {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"},
                {"Sec-Fetch-Site": "cross-site"},
            ):
                refused += [
                    ("POST", f"/media/{media_id}/rename",
                     {"headers": headers, "data": {"title": "pwned", "csrf_token": csrf}}),
                    ("POST", f"/media/{media_id}/visibility",
                     {"headers": headers, "data": {"visibility": "public", "csrf_token": csrf}}),
                    ("POST", f"/media/{media_id}/delete",
                     {"headers": headers, "data": {"csrf_token": csrf}}),
                    ("POST", f"/media/{media_id}/shares",
                     {"headers": headers, "data": {"expires": "never", "csrf_token": csrf}}),
                    ("PATCH", f"/api/media/{media_id}",
                     {"headers": {**headers, "X-CSRF-Token": csrf},
                      "json": {"title": "pwned", "visibility": "public"}}),
                    ("DELETE", f"/api/media/{media_id}",
                     {"headers": {**headers, "X-CSRF-Token": csrf}}),
                    ("POST", f"/api/media/{media_id}/shares",
                     {"headers": {**headers, "X-CSRF-Token": csrf}, "json": {"note": "x"}}),
                ]  # fmt: skip
            # The same cookie with no CSRF token (and no Origin at all), or a wrong one.
            for token_fields in ({}, {"csrf_token": "wrong"}, {"csrf_token": csrf + "x"}):
                refused += [
                    ("POST", f"/media/{media_id}/rename",
                     {"data": {"title": "pwned", **token_fields}}),
                    ("POST", f"/media/{media_id}/visibility",
                     {"data": {"visibility": "public", **token_fields}}),
                    ("POST", f"/media/{media_id}/delete", {"data": token_fields}),
                    ("POST", f"/media/{media_id}/shares",
                     {"data": {"expires": "never", **token_fields}}),
                ]  # fmt: skip
            for header in ({}, {"X-CSRF-Token": "wrong"}):
                refused += [
                    ("PATCH", f"/api/media/{media_id}",
                     {"headers": header, "json": {"title": "pwned"}}),
                    ("DELETE", f"/api/media/{media_id}", {"headers": header}),
                    ("POST", f"/api/media/{media_id}/shares",
                     {"headers": header, "json": {"note": "x"}}),
                ]  # fmt: skip
        upload_files = {"file": ("evil.txt", b"evil bytes", "text/plain")}
        for path in ("/api/media", "/upload", "/api/media?csrf_token=wrong",
                     "/upload?csrf_token=wrong"):  # fmt: skip
            refused.append(("POST", path, {"files": upload_files, "data": {"title": "pwned"}}))
            refused.append(("POST", path, {"files": upload_files, "headers": foreign}))
        refused.append(("POST", f"/upload?csrf_token={csrf}",
                        {"files": upload_files, "headers": foreign}))  # fmt: skip
        refused.append(("POST", "/logout", {"data": {}}))
        refused.append(("POST", "/logout", {"data": {"csrf_token": csrf}, "headers": foreign}))
        for method, path, kwargs in refused:
            response = victim.request(method, path, **kwargs)
            assert response.status_code == 403, (method, path, kwargs, response.text)
        assert victim.get("/api/me").json()["username"] == "victim"

        # Another host name: refused before anything else.
        for method, path in (("GET", "/"), ("GET", "/api/media"), ("POST", "/logout")):
            response = victim.request(method, path, headers={"Host": "attacker.example"})
            assert response.status_code == 400, (method, path)
    with httpx2.Client(timeout=30) as plain:
        response = plain.get(server.base_url + "/", headers={"Host": "attacker.example"})
        assert response.status_code == 400
        response = plain.get(
            server.base_url + f"/api/media/{public_id}", headers={"Host": "attacker.example"}
        )
        assert response.status_code == 400

    assert _snapshot(server, victim_token, ids) == before

    # The control: the same cookie from the victim's own page (its token, no foreign
    # origin) does change things, so every refusal above was the CSRF defence's.
    with server.anonymous_client(cookies=cookies) as victim:
        response = victim.post(
            f"/media/{private_id}/rename", data={"title": "Diary 2", "csrf_token": csrf}
        )
        assert response.status_code == 303, response.text
        response = victim.patch(
            f"/api/media/{public_id}",
            json={"title": "Holiday 2"},
            headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin",
                     "Origin": server.base_url},
        )  # fmt: skip
        assert response.status_code == 200, response.text
    after = _snapshot(server, victim_token, ids)
    assert after["details"] == {
        public_id: ("Holiday 2", "public", "victim"),
        private_id: ("Diary 2", "private", "victim"),
    }
