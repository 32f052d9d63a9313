"""Headers on every answer: Date, nosniff, Referrer-Policy; a CSP on every page."""

import re
from email.utils import parsedate_to_datetime

from fastapi.testclient import TestClient

from tests.conftest import upload


def _every_kind_of_answer(client: TestClient) -> dict[str, object]:
    media = upload(client, b"<html><script>alert(1)</script></html>", filename="page.html")
    return {
        "catalog page": client.get("/"),
        "media page": client.get(media["page_url"]),
        "upload page": client.get("/upload"),
        "error page": client.get("/media/nope"),
        "api": client.get("/api/media"),
        "api error": client.get("/api/media/nope"),
        "healthz": client.get("/healthz"),
        "bytes": client.get(media["stream_url"]),
        "static": client.get("/static/style.css"),
        "docs": client.get("/docs"),
        "body too large": client.patch(f"/api/media/{media['id']}", content=b"x" * 100_000),
    }


def test_every_answer_says_nosniff_date_and_referrer_policy(client: TestClient) -> None:
    for name, response in _every_kind_of_answer(client).items():
        headers = response.headers  # type: ignore[attr-defined]
        assert headers.get("x-content-type-options") == "nosniff", name
        assert headers.get("referrer-policy") == "same-origin", name
        assert parsedate_to_datetime(headers["date"]), name


def test_pages_run_only_their_own_scripts_and_cannot_be_framed(client: TestClient) -> None:
    answers = _every_kind_of_answer(client)
    for name in ("catalog page", "media page", "upload page", "error page"):
        response = answers[name]
        policy = response.headers["content-security-policy"]  # type: ignore[attr-defined]
        assert "script-src 'self';" in policy, name
        assert "frame-ancestors 'none'" in policy, name
        assert "unsafe-inline" not in policy, name
        html = response.text  # type: ignore[attr-defined]
        # Nothing inline that the policy would have to allow.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name
        assert not re.search(r"\son[a-z]+=", html), name
        assert not re.search(r"\sstyle=", html), name
    # Uploaded HTML keeps its own, stricter sandbox.
    bytes_policy = answers["bytes"].headers["content-security-policy"]  # type: ignore[attr-defined]
    assert bytes_policy.startswith("sandbox")


def test_last_modified_is_never_later_than_date(client: TestClient) -> None:
    # Stored within the current second: truncated to the second, Last-Modified could
    # otherwise be the next one after Date's.
    for _ in range(20):
        media = upload(client, b"fresh bytes", filename="fresh.bin")
        response = client.get(media["stream_url"])
        date = parsedate_to_datetime(response.headers["date"])
        assert parsedate_to_datetime(response.headers["last-modified"]) <= date
