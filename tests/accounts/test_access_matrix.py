"""Who reaches what: every caller × visibility × route, against a live ``streamport serve``.

One server per catalog database (SQLite, PostgreSQL) holds three transcoded HEVC videos of one
member, one per visibility, each with a share link. Every row of the matrix is one caller and
one visibility; it asks every page, API route, byte URL and event stream of that media and
reports all the answers that differ from the policy at once:

- the owner and admins see everything; anyone sees public and unlisted media; a share link
  opens its media (``/s/{token}`` and byte URLs with ``?share=``); anything else is a 404 that
  reads exactly as the one for an unknown id;
- listings and searches show public media and the caller's own, never anyone else's unlisted
  or private media (not even to an admin);
- bytes of public media may be cached by anyone for good, all others only privately;
- changes: owner and admin may, others get 401 (signed out) or 403 (signed in) on a media they
  can see, and 404 on one they cannot.
"""

import difflib
import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.config import Settings
from tests.conftest import LiveServer, new_database, provision, start_server, wait_for_processing
from tests.media_samples import make_hevc_mkv

CALLERS = ("anonymous", "other", "owner", "admin", "share")
VISIBILITIES = ("public", "unlisted", "private")
# The shape of a media id (16 base32 characters), but no media has it.
UNKNOWN_ID = "a" * 16
RANGE = {"Range": "bytes=0-99"}
CACHE_PUBLIC = "public, max-age=31536000, immutable"
CACHE_PRIVATE = "private, no-cache"
# CSRF tokens in pages are fresh per request before sign-in: the one part of an error page
# that may differ between two identical requests.
_CSRF_VALUE = re.compile(r'(name="csrf[-_]token"\s+(?:content|value)=")[^"]*(")')


@dataclass(frozen=True)
class World:
    """The server, who calls it, and what they call."""

    server: LiveServer
    # Bearer tokens of the signed-in callers.
    tokens: dict[str, str]
    # Visibility → the Media JSON (as its owner sees it).
    media: dict[str, dict[str, Any]]
    # Visibility → the token of a share link to that media.
    shares: dict[str, str]
    # Visibility → a word found only in that media's title.
    words: dict[str, str]


@pytest.fixture(scope="module")
def hevc_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three distinct HEVC videos (browsers cannot play them: processing makes a copy)."""
    directory = tmp_path_factory.mktemp("access-matrix-samples")
    return {
        visibility: make_hevc_mkv(directory / f"{visibility} clip.mkv", seconds=1.0 + index / 5)
        for index, visibility in enumerate(VISIBILITIES)
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    hevc_videos: dict[str, Path],
) -> Iterator[World]:
    """One server for the whole matrix on one database, with the three media and their
    share links in place and processed."""
    root = tmp_path_factory.mktemp(f"access-matrix-{request.param}")
    database_url = None
    if request.param == "postgresql":
        database_url = new_database(request.getfixturevalue("postgres"))
    settings = Settings(
        _env_file=None,
        media_dir=root / "media",
        max_upload_bytes=10 * 2**20,
        database_url=database_url,
        transcode=True,
        # The three videos process side by side.
        processing_concurrency=3,
    )
    server = start_server(settings, root / "server.log")
    try:
        tokens = {
            "owner": provision(settings, "owner"),
            "other": provision(settings, "other"),
            "admin": server.token,
        }
        media: dict[str, dict[str, Any]] = {}
        shares: dict[str, str] = {}
        words: dict[str, str] = {}
        owner_headers = {"Authorization": f"Bearer {tokens['owner']}"}
        with server.anonymous_client(headers=owner_headers) as owner:
            for visibility, path in hevc_videos.items():
                words[visibility] = f"w{uuid.uuid4().hex[:12]}"
                title = f"Matrix {visibility} clip {words[visibility]}"
                with path.open("rb") as handle:
                    response = owner.post(
                        "/api/media",
                        files={"file": (path.name, handle, "video/x-matroska")},
                        data={"title": title, "visibility": visibility},
                    )
                assert response.status_code == 201, response.text
                [uploaded] = response.json()["items"]
                assert (uploaded["owner"], uploaded["visibility"]) == ("owner", visibility)
                media[visibility] = uploaded
            for visibility, uploaded in media.items():
                processed = wait_for_processing(server, uploaded["id"])
                assert processed["processing"]["state"] == "done", processed["processing"]
                for field in ("poster_url", "thumbnail_url", "playback_url"):
                    assert processed[field], (field, processed)
                assert processed["playback_url"] != processed["stream_url"], processed
                # The owner's view of the finished media: the URLs the matrix asks.
                response = owner.get(f"/api/media/{uploaded['id']}")
                assert response.status_code == 200, response.text
                media[visibility] = response.json()
                response = owner.post(f"/api/media/{uploaded['id']}/shares", json={"note": ""})
                assert response.status_code == 201, response.text
                url = response.json()["url"]
                assert url.startswith(f"{server.base_url}/s/"), url
                shares[visibility] = url.removeprefix(f"{server.base_url}/s/")
        yield World(server, tokens, media, shares, words)
    finally:
        server.stop()


def _may_view(caller: str, visibility: str) -> bool:
    return caller in ("owner", "admin", "share") or visibility in ("public", "unlisted")


def _listed(caller: str, visibility: str) -> bool:
    return visibility == "public" or caller == "owner"


def _normalized(response: httpx2.Response) -> tuple[str | None, str]:
    """What must match between a hidden media's 404 and an unknown id's."""
    return response.headers.get("content-type"), _CSRF_VALUE.sub(r"\1\2", response.text)


def _difference(unknown: httpx2.Response, response: httpx2.Response) -> str:
    """The first lines that differ between the unknown id's answer and this one."""
    (unknown_type, unknown_text), (response_type, response_text) = (
        _normalized(unknown),
        _normalized(response),
    )
    lines = [f"    content-type {unknown_type!r} vs {response_type!r}"]
    diff = difflib.unified_diff(
        unknown_text.splitlines(), response_text.splitlines(), "unknown id", "this media", n=0
    )
    lines += [f"    {line}" for line in itertools.islice(diff, 12)]
    return "\n".join(lines)


class Row:
    """The requests of one caller, and the mismatches found so far."""

    def __init__(self, world: World, caller: str, visibility: str) -> None:
        self.world = world
        self.caller = caller
        self.visibility = visibility
        self.media = world.media[visibility]
        self.mismatches: list[str] = []
        headers = {}
        if caller in world.tokens:
            headers["Authorization"] = f"Bearer {world.tokens[caller]}"
        self.client = world.server.anonymous_client(headers=headers, timeout=30)
        # Sent with every request: a share link holder's ``?share=``, while the row asks for it.
        self.params: dict[str, str] = {}

    def fail(self, route: str, message: str) -> None:
        self.mismatches.append(f"{route}: {message}")

    def send(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx2.Response:
        # Each request on its own: no cookie (a CSRF binding, say) carried from the last one.
        self.client.cookies.clear()
        params = {**self.params, **kwargs.pop("params", {})}
        return self.client.request(method, url, params=params, headers=headers, **kwargs)

    def check_status(
        self,
        route: str,
        response: httpx2.Response,
        expected: int,
        unknown: httpx2.Response | None = None,
    ) -> bool:
        """Whether the status is ``expected``; a 404 must also read as the unknown id's."""
        if response.status_code != expected:
            self.fail(route, f"status {response.status_code}, expected {expected}")
            return False
        if expected == 404:
            assert unknown is not None
            if unknown.status_code != 404:
                self.fail(route, f"the unknown id answered {unknown.status_code}, not 404")
            elif _normalized(response) != _normalized(unknown):
                self.fail(
                    route, f"404 differs from an unknown id's:\n{_difference(unknown, response)}"
                )
        return True

    def unknown_url(self, url: str) -> str:
        return url.replace(self.media["id"], UNKNOWN_ID)

    def check_view(
        self, route: str, url: str, headers: dict[str, str] | None = None, *, is_bytes: bool = False
    ) -> None:
        """A GET that answers 200 (206 with a Range) when the caller may view the media and
        the unknown id's 404 otherwise; bytes carry the visibility's Cache-Control."""
        allowed = _may_view(self.caller, self.visibility)
        response = self.send("GET", url, headers)
        unknown = None if allowed else self.send("GET", self.unknown_url(url), headers)
        expected = (206 if headers and "Range" in headers else 200) if allowed else 404
        if not self.check_status(route, response, expected, unknown) or not allowed:
            return
        if route == "share page":
            # The page's links carry the token, so its player and download work.
            link = f'href="{self.media["download_url"]}?share={self.world.shares[self.visibility]}"'
            if link not in response.text:
                self.fail(route, f"no {link} in the page")
        if route == "api item" and response.json().get("id") != self.media["id"]:
            self.fail(route, f"answered another media: {response.text[:200]}")
        if is_bytes:
            wanted = CACHE_PUBLIC if self.visibility == "public" else CACHE_PRIVATE
            got = response.headers.get("cache-control")
            if got != wanted:
                self.fail(route, f"Cache-Control {got!r}, expected {wanted!r}")

    def check_events(self) -> None:
        route = "events"
        url = self.media["events_url"]
        allowed = _may_view(self.caller, self.visibility)
        self.client.cookies.clear()
        with self.client.stream("GET", url, params=self.params) as response:
            status = response.status_code
            if allowed and status == 200:
                first = next(response.iter_bytes(), b"")
                if not first.startswith(b"retry:"):
                    self.fail(route, f"the stream starts with {first[:60]!r}")
            else:
                response.read()
        unknown = None if allowed else self.send("GET", self.unknown_url(url))
        self.check_status(route, response, 200 if allowed else 404, unknown)
        if status == 200 and not response.headers.get("content-type", "").startswith(
            "text/event-stream"
        ):
            self.fail(route, f"content-type {response.headers.get('content-type')!r}")

    def check_listed(self, route: str, url: str, params: dict[str, Any]) -> None:
        """Whether the media is in a listing (JSON) or a search page (HTML) as policy says."""
        response = self.send("GET", url, params=params)
        if not self.check_status(route, response, 200):
            return
        if url.startswith("/api/"):
            present = self.media["id"] in {item["id"] for item in response.json()["items"]}
        else:
            present = self.media["title"] in response.text
        expected = _listed(self.caller, self.visibility)
        if present != expected:
            self.fail(route, "listed" if present else "not listed")

    def check_manage(self) -> None:
        """PATCH the title to itself: allowed for the owner and admins, 401/403 for others
        who may see the media, the unknown id's 404 for those who may not."""
        route = "PATCH title"
        url = f"/api/media/{self.media['id']}"
        body = {"title": self.media["title"]}
        if self.caller in ("owner", "admin"):
            expected = 200
        elif not _may_view(self.caller, self.visibility):
            expected = 404
        else:
            expected = 401 if self.caller == "anonymous" else 403
        response = self.send("PATCH", url, json=body)
        unknown = self.send("PATCH", self.unknown_url(url), json=body) if expected == 404 else None
        if self.check_status(route, response, expected, unknown) and expected == 200:
            changed = response.json()
            if (changed["title"], changed["visibility"]) != (self.media["title"], self.visibility):
                self.fail(route, f"changed the media: {response.text[:200]}")


def _rows() -> list[Any]:
    return [
        pytest.param(caller, visibility, id=f"{caller}-{visibility}")
        for caller in CALLERS
        for visibility in VISIBILITIES
    ]


@pytest.mark.parametrize(("caller", "visibility"), _rows())
def test_access_matrix(world: World, caller: str, visibility: str) -> None:
    row = Row(world, caller, visibility)
    media = row.media
    with row.client:
        if caller == "share":
            # The link's own page opens the media whatever its visibility.
            row.check_view("share page", f"/s/{world.shares[visibility]}")
            # Every other URL of the media carries the link's token, as the page's links do.
            row.params = {"share": world.shares[visibility]}
        else:
            row.check_view("page", media["page_url"])
        row.check_view("api item", f"/api/media/{media['id']}")
        row.check_view("stream", media["stream_url"], RANGE, is_bytes=True)
        row.check_view("download", media["download_url"], RANGE, is_bytes=True)
        row.check_view("poster", media["poster_url"], is_bytes=True)
        row.check_view("thumbnail", media["thumbnail_url"], is_bytes=True)
        row.check_view("playback", media["playback_url"], RANGE, is_bytes=True)
        row.check_events()
        # A share link opens one media: listings stay those of the caller without it.
        row.params = {}
        row.check_listed("api list", "/api/media", {"per_page": 200})
        row.check_listed("api search", "/api/media", {"q": world.words[visibility]})
        row.check_listed("html search", "/", {"q": world.words[visibility]})
        if caller != "share":
            row.check_manage()
    if row.mismatches:
        pytest.fail(f"{caller} × {visibility}:\n  " + "\n  ".join(row.mismatches), pytrace=False)


def test_share_link_opens_only_its_own_media(world: World) -> None:
    """A valid share token of one media, or a made-up one, opens no other private media."""
    private = world.media["private"]
    unknown_stream = private["stream_url"].replace(private["id"], UNKNOWN_ID)
    with world.server.anonymous_client() as client:
        expected = client.get(unknown_stream, params={"share": world.shares["public"]})
        assert expected.status_code == 404
        for token in (world.shares["public"], world.shares["unlisted"], "made-up"):
            response = client.get(private["stream_url"], params={"share": token})
            assert response.status_code == 404, token
            assert _normalized(response) == _normalized(expected), token
        # The same URL with its own link: the bytes.
        response = client.get(
            private["stream_url"], params={"share": world.shares["private"]}, headers=RANGE
        )
        assert response.status_code == 206
