"""The pure header checks: which Host a request names, and whether another site sent it."""

import pytest

from app.web.request_checks import authority, cross_site, host_allowed, host_name

ALLOWED = frozenset({"localhost", "127.0.0.1", "[::1]", "media.example.org"})


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Media.Example.org", "media.example.org"),
        ("media.example.org.:8443", "media.example.org"),
        ("[::1]:8000", "[::1]"),
        ("[::1", None),
        ("[::1]x", None),
        ("evil@127.0.0.1", None),
        ("127.0.0.1:80:80", None),
        ("127.0.0.1:1234567", None),
        ("", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_host_allowed() -> None:
    assert host_allowed("LOCALHOST:8000", ALLOWED)
    assert not host_allowed("attacker.example", ALLOWED)
    assert not host_allowed(None, ALLOWED)
    assert host_allowed("anything", frozenset({"*"}))


def test_authority_keeps_the_port() -> None:
    assert authority("127.0.0.1:8000") == ("127.0.0.1", "8000")
    assert authority("[::1]:8000") == ("[::1]", "8000")
    assert authority("[::1]") == ("[::1]", "")
    assert authority("Media.Example.org") == ("media.example.org", "")


def test_the_browsers_verdict_decides_when_it_gives_one() -> None:
    assert not cross_site("http://evil.example", "same-origin", "127.0.0.1:8000")
    assert not cross_site(None, "none", "127.0.0.1:8000")
    for verdict in ("same-site", "cross-site", "garbage"):
        assert cross_site("http://127.0.0.1:8000", verdict, "127.0.0.1:8000")


def test_without_it_the_origin_must_be_this_host_and_port() -> None:
    host = "127.0.0.1:8000"
    assert not cross_site("http://127.0.0.1:8000", None, host)
    assert not cross_site(None, None, host)  # no browser: the CSRF token decides
    # Another port of the same host is another site's page.
    assert cross_site("http://127.0.0.1:9999", None, host)
    assert cross_site("http://127.0.0.1", None, host)
    assert cross_site("http://localhost:8000", None, host)
    assert cross_site("http://evil.example", None, host)
    for malformed in ("null", "http://[::1", "file://", "http://127.0.0.1:8000/path", "x"):
        assert cross_site(malformed, None, host), malformed
    assert cross_site("http://127.0.0.1:8000", None, None)


def test_the_public_address_counts_as_ours_behind_a_proxy() -> None:
    public = "https://media.example.org:8443"
    # nginx's "Host $host" drops the port the browser used.
    assert not cross_site(public, None, "media.example.org", public)
    assert cross_site("https://media.example.org:9443", None, "media.example.org", public)
    assert not cross_site("https://media.example.org", None, "media.example.org", None)
