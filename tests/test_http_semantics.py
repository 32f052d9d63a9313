"""The pure byte-serving decisions, table-driven."""

from datetime import UTC, datetime

import pytest

from app.http_semantics import (
    ByteRange,
    Representation,
    content_disposition,
    decide,
    http_date,
    parse_range,
    strong_etag,
)

SIZE = 10_000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [ByteRange(0, 99)]),
        ("bytes=9990-", [ByteRange(9990, 9999)]),
        ("bytes=-10", [ByteRange(9990, 9999)]),
        ("bytes=-20000", [ByteRange(0, 9999)]),
        ("bytes=9000-20000", [ByteRange(9000, 9999)]),
        ("BYTES=0-0", [ByteRange(0, 0)]),
        ("bytes=0-1, 5-6", [ByteRange(0, 1), ByteRange(5, 6)]),
        ("bytes= 0-1 ,\t5-6", [ByteRange(0, 1), ByteRange(5, 6)]),
        ("bytes=0-1,,5-6", [ByteRange(0, 1), ByteRange(5, 6)]),
        ("bytes=5-6,0-1", [ByteRange(5, 6), ByteRange(0, 1)]),
        ("bytes=20000-30000,0-1", [ByteRange(0, 1)]),
        ("bytes=10000-", []),
        ("bytes=-0", []),
        ("bytes=5-4", None),
        ("bytes=abc", None),
        ("bytes=1-2-3", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("bytes=,", None),
        ("items=0-1", None),
        ("0-1", None),
        ("bytes=0x10-20", None),
        ("bytes=+1-2", None),
        ("", None),
    ],
)
def test_parse_range(header: str, expected: list[ByteRange] | None) -> None:
    assert parse_range(header, SIZE) == expected


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    assert parse_range("bytes=0-", 0) == []
    assert parse_range("bytes=-5", 0) == []


def test_content_range_formats_inclusive_span() -> None:
    assert ByteRange(7, 9).content_range(10) == "bytes 7-9/10"
    assert ByteRange(7, 9).length == 3


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("movie.mp4", 'attachment; filename="movie.mp4"'),
        (
            "Übung 1.mp4",
            "attachment; filename=\"Ubung 1.mp4\"; filename*=UTF-8''%C3%9Cbung%201.mp4",
        ),
        (
            "日本語.txt",
            "attachment; filename=\"___.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
        ),
        ('a"b\\c.txt', "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"),
        ("100%.txt", "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt"),
    ],
)
def test_content_disposition(filename: str, expected: str) -> None:
    assert content_disposition("attachment", filename) == expected


def test_etag_is_strong_and_quoted() -> None:
    assert strong_etag("ab" * 32) == f'"{"ab" * 32}"'


def test_http_date_is_imf_fixdate() -> None:
    assert http_date(datetime(2026, 11, 25, 13, 4, 5, 999, tzinfo=UTC)) == (
        "Wed, 25 Nov 2026 13:04:05 GMT"
    )


REP = Representation(
    size=SIZE, etag='"abc"', last_modified=datetime(2026, 11, 25, 13, 4, 5, tzinfo=UTC)
)


@pytest.mark.parametrize(
    ("method", "headers", "status", "span"),
    [
        ("GET", {}, 200, None),
        ("GET", {"range": "bytes=0-1"}, 206, ByteRange(0, 1)),
        ("HEAD", {"range": "bytes=0-1"}, 200, None),
        ("GET", {"range": "bytes=20000-"}, 416, None),
        ("GET", {"range": "bytes=x"}, 200, None),
        ("GET", {"range": "bytes=0-1", "if-range": '"abc"'}, 206, ByteRange(0, 1)),
        ("GET", {"range": "bytes=0-1", "if-range": '"other"'}, 200, None),
        ("GET", {"range": "bytes=0-1", "if-range": 'W/"abc"'}, 200, None),
        (
            "GET",
            {"range": "bytes=0-1", "if-range": "Wed, 25 Nov 2026 13:04:05 GMT"},
            206,
            ByteRange(0, 1),
        ),
        ("GET", {"range": "bytes=0-1", "if-range": "Wed, 25 Nov 2026 13:04:04 GMT"}, 200, None),
        ("GET", {"range": "bytes=0-1", "if-range": "garbage"}, 200, None),
    ],
)
def test_decide(method: str, headers: dict[str, str], status: int, span: ByteRange | None) -> None:
    decision = decide(method, headers, REP)
    assert decision.status == status
    assert decision.span == span


def test_decide_416_names_the_size() -> None:
    decision = decide("GET", {"range": "bytes=20000-"}, REP)
    assert decision.headers["Content-Range"] == f"bytes */{SIZE}"


def test_decide_206_headers() -> None:
    decision = decide("GET", {"range": "bytes=-3"}, REP)
    assert decision.headers == {"Content-Range": "bytes 9997-9999/10000", "Content-Length": "3"}
