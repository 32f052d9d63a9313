"""Parsing Range, coalescing spans, multipart/byteranges framing."""

import pytest

from app.serving.byte_ranges import (
    ByteRange,
    body_length,
    coalesce,
    multipart_byteranges,
    parse_range,
)

SIZE = 10_000
B = ByteRange


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [B(0, 99)]),
        ("bytes=9990-", [B(9990, 9999)]),
        ("bytes=-10", [B(9990, 9999)]),
        ("bytes=-20000", [B(0, 9999)]),
        ("bytes=9000-20000", [B(9000, 9999)]),
        ("BYTES=0-0", [B(0, 0)]),
        ("Bytes=0-0", [B(0, 0)]),
        ("bytes=0-1, 5-6", [B(0, 1), B(5, 6)]),
        ("bytes= 0-1 ,\t5-6", [B(0, 1), B(5, 6)]),
        ("bytes=0-1,,5-6", [B(0, 1), B(5, 6)]),
        ("bytes=5-6,0-1", [B(5, 6), B(0, 1)]),
        ("bytes=20000-30000,0-1", [B(0, 1)]),
        ("bytes=00000-00001", [B(0, 1)]),
        ("bytes=0-99999999999999999999999", [B(0, 9999)]),
        ("bytes=10000-", []),
        ("bytes=-0", []),
        ("bytes=10000-10001,20000-", []),
        ("bytes=5-4", None),
        ("bytes=abc", None),
        ("bytes=1-2-3", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("bytes=,", None),
        ("bytes=0-1,x", None),
        ("items=0-1", None),
        ("0-1", None),
        ("bytes=0x10-20", None),
        ("bytes=+1-2", None),
        ("bytes=1 -2", None),
        ("bytes=٣-4", None),  # non-ASCII digits are not DIGIT
        ("", None),
    ],
)
def test_parse_range(header: str, expected: list[ByteRange] | None) -> None:
    assert parse_range(header, SIZE) == expected


LONG = "9" * 10_000  # Python refuses to turn more than 4,300 digits into an int


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"bytes=0-{LONG}", [B(0, 9999)]),
        (f"bytes=-{LONG}", [B(0, 9999)]),
        (f"bytes={LONG}-", []),
        (f"bytes={LONG}-{LONG}", []),
        (f"bytes={'0' * 9_000}5-{'0' * 9_000}6", [B(5, 6)]),
        (f"bytes=2{LONG}-1{LONG}", None),  # last-pos < first-pos, however long
        (f"bytes=1{LONG}-2{LONG}", []),
        (f"bytes=5-{'0' * 9_000}4", None),
    ],
    ids=lambda value: value[:12] + "…" if isinstance(value, str) else None,
)
def test_long_numbers_are_compared_exactly_and_never_fail(
    header: str, expected: list[ByteRange] | None
) -> None:
    assert parse_range(header, SIZE) == expected


def test_more_specs_than_allowed_ignores_the_header() -> None:
    allowed = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(100))
    assert parse_range(allowed, SIZE, max_specs=100) is not None
    assert parse_range(allowed + ",5000-5000", SIZE, max_specs=100) is None
    # Unsatisfiable or empty elements do not slip past the count.
    assert parse_range("bytes=" + "20000-," * 101, SIZE, max_specs=100) is None
    assert parse_range("bytes=0-0" + "," * 1000, SIZE, max_specs=100) is None


def test_a_million_specs_stop_at_the_limit() -> None:
    header = "bytes=" + "0-0," * 1_000_000
    # A parser that looked at every spec would find the invalid tail and say so; one that
    # stops at the limit never reaches it.
    assert parse_range(header + "x", SIZE, max_specs=100) is None
    assert parse_range("bytes=" + "0-0," * 50 + "x", SIZE, max_specs=100) is None


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    assert parse_range("bytes=0-", 0) == []
    assert parse_range("bytes=-5", 0) == []


def test_content_range_formats_inclusive_span() -> None:
    assert B(7, 9).content_range(10) == "bytes 7-9/10"
    assert B(7, 9).length == 3


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([B(0, 9), B(200, 299)], [B(0, 9), B(200, 299)]),
        ([B(200, 299), B(0, 9)], [B(200, 299), B(0, 9)]),
        ([B(0, 9), B(5, 20)], [B(0, 20)]),
        ([B(0, 9), B(10, 20)], [B(0, 20)]),
        ([B(0, 9), B(90, 99)], [B(0, 99)]),  # an 80-byte gap costs less than a part header
        ([B(0, 9), B(91, 99)], [B(0, 9), B(91, 99)]),
        ([B(500, 600), B(0, 10), B(300, 400), B(5, 550)], [B(0, 600)]),
        ([B(1000, 1100), B(0, 10), B(1050, 2000)], [B(1000, 2000), B(0, 10)]),
        ([B(0, 0)] * 5, [B(0, 0)]),
    ],
)
def test_coalesce(spans: list[ByteRange], expected: list[ByteRange]) -> None:
    assert coalesce(spans) == expected


def test_multipart_framing_uses_crlf_and_counts_exactly() -> None:
    body = multipart_byteranges([B(0, 1), B(5, 6)], 10, "video/mp4", "XYZ")
    assert body == [
        b"\r\n--XYZ\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-1/10\r\n\r\n",
        B(0, 1),
        b"\r\n--XYZ\r\nContent-Type: video/mp4\r\nContent-Range: bytes 5-6/10\r\n\r\n",
        B(5, 6),
        b"\r\n--XYZ--\r\n",
    ]
    assert body_length(body) == sum(len(p) for p in body if isinstance(p, bytes)) + 4
