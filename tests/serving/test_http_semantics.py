"""The byte-serving decision: table-driven RFC 9110 cases and Hypothesis properties."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.serving.byte_ranges import ByteRange, body_length
from app.serving.http_semantics import (
    DECISION_HEADERS,
    Decision,
    Representation,
    content_disposition,
    decide,
    http_date,
    repr_digest,
    strong_etag,
)

SHA = "ab" * 32
REP = Representation(
    size=10_000,
    etag=f'"{SHA}"',
    sha256=SHA,
    last_modified=datetime(2026, 11, 25, 13, 4, 5, 123456, tzinfo=UTC),
    content_type="video/mp4",
)
ETAG = f'"{SHA}"'
AT = "Wed, 25 Nov 2026 13:04:05 GMT"
BOUNDARY = "b0undary"


def _decide(method: str = "GET", **headers: str) -> Decision:
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return decide(method, named, REP, new_boundary=lambda: BOUNDARY, max_ranges=10)


def _spans(decision: Decision) -> list[ByteRange]:
    return [part for part in decision.body if isinstance(part, ByteRange)]


@pytest.mark.parametrize(
    ("method", "headers", "status", "spans"),
    [
        ("GET", {}, 200, [ByteRange(0, 9999)]),
        ("HEAD", {}, 200, []),
        ("GET", {"range": "bytes=0-1"}, 206, [ByteRange(0, 1)]),
        ("HEAD", {"range": "bytes=0-1"}, 200, []),
        ("GET", {"range": "bytes=20000-"}, 416, []),
        ("GET", {"range": "bytes=x"}, 200, [ByteRange(0, 9999)]),
        ("GET", {"range": "pages=1-2"}, 200, [ByteRange(0, 9999)]),
        ("GET", {"range": "bytes=0-1,200-201"}, 206, [ByteRange(0, 1), ByteRange(200, 201)]),
        ("GET", {"range": "bytes=0-1,20000-"}, 206, [ByteRange(0, 1)]),
        ("GET", {"range": "bytes=0-1,2-3"}, 206, [ByteRange(0, 3)]),
        ("GET", {"range": "bytes=0-,0-"}, 200, [ByteRange(0, 9999)]),  # would exceed the file
        ("GET", {"range": ",".join(["bytes=0-0"] + ["5-5"] * 10)}, 200, [ByteRange(0, 9999)]),
        ("GET", {"range": "bytes=0-1", "if_range": ETAG}, 206, [ByteRange(0, 1)]),
        ("GET", {"range": "bytes=0-1", "if_range": '"other"'}, 200, [ByteRange(0, 9999)]),
        ("GET", {"range": "bytes=0-1", "if_range": f"W/{ETAG}"}, 200, [ByteRange(0, 9999)]),
        ("GET", {"range": "bytes=0-1", "if_range": AT}, 206, [ByteRange(0, 1)]),
        ("GET", {"if_none_match": ETAG}, 304, []),
        ("HEAD", {"if_none_match": ETAG}, 304, []),
        ("GET", {"if_none_match": ETAG, "range": "bytes=0-1"}, 304, []),
        ("GET", {"if_modified_since": AT}, 304, []),
        ("GET", {"if_none_match": '"x"', "if_modified_since": AT}, 200, [ByteRange(0, 9999)]),
        ("GET", {"if_match": '"x"'}, 412, []),
        ("GET", {"if_match": ETAG, "range": "bytes=5-"}, 206, [ByteRange(5, 9999)]),
        ("GET", {"if_unmodified_since": "Wed, 25 Nov 2026 13:04:04 GMT"}, 412, []),
        ("GET", {"if_match": '"x"', "range": "bytes=20000-"}, 412, []),
    ],
)
def test_decide(method: str, headers: dict[str, str], status: int, spans: list[ByteRange]) -> None:
    decision = _decide(method, **headers)
    assert decision.status == status
    assert _spans(decision) == spans


def test_full_answer_headers() -> None:
    decision = _decide()
    assert decision.headers == {
        "ETag": ETAG,
        "Last-Modified": AT,
        "Content-Type": "video/mp4",
        "Content-Length": "10000",
        "Repr-Digest": repr_digest(SHA),
    }


def test_single_range_headers() -> None:
    decision = _decide(range="bytes=-3")
    assert decision.headers["Content-Range"] == "bytes 9997-9999/10000"
    assert decision.headers["Content-Length"] == "3"
    assert decision.headers["Content-Type"] == "video/mp4"


def test_multipart_headers_and_exact_length() -> None:
    decision = _decide(range="bytes=0-1,200-201")
    assert decision.headers["Content-Type"] == f"multipart/byteranges; boundary={BOUNDARY}"
    assert int(decision.headers["Content-Length"]) == body_length(decision.body)
    assert decision.body[0] == (
        b"\r\n--b0undary\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-1/10000\r\n\r\n"
    )
    assert decision.body[-1] == b"\r\n--b0undary--\r\n"


def test_not_modified_carries_validators_only() -> None:
    decision = _decide(if_none_match=ETAG)
    assert decision.headers == {"ETag": ETAG, "Last-Modified": AT}


def test_416_names_the_size() -> None:
    decision = _decide(range="bytes=20000-")
    assert decision.headers["Content-Range"] == "bytes */10000"


def test_repr_digest_is_base64_of_the_sha256() -> None:
    assert repr_digest("00" * 31 + "ff") == "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP8=:"


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
    assert strong_etag(SHA) == ETAG


def test_http_date_is_imf_fixdate() -> None:
    assert http_date(datetime(2026, 11, 25, 13, 4, 5, 999, tzinfo=UTC)) == AT


# --- properties -------------------------------------------------------------------------

range_text = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda unit, specs: f"{unit}={','.join(specs)}",
        st.sampled_from(["bytes", "BYTES", "bytes ", "items"]),
        st.lists(
            st.one_of(
                st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 12_000), st.integers(0, 12_000)),
                st.builds(lambda a: f"{a}-", st.integers(0, 12_000)),
                st.builds(lambda a: f"-{a}", st.integers(0, 12_000)),
                st.sampled_from(["", " ", "x", "-", "1-2-3"]),
            ),
            max_size=14,
        ),
    ),
)
header_text = st.one_of(st.none(), st.text(max_size=40), st.sampled_from([ETAG, AT, "*"]))
sizes = st.integers(0, 12_000)


@settings(max_examples=400, deadline=None)
@given(
    size=sizes,
    range_header=st.one_of(st.none(), range_text),
    if_range=header_text,
    if_match=header_text,
    if_none_match=header_text,
    if_modified_since=header_text,
)
def test_decision_properties(
    size: int,
    range_header: str | None,
    if_range: str | None,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> None:
    rep = REP._replace(size=size)
    headers = {
        name: value
        for name, value in {
            "range": range_header,
            "if-range": if_range,
            "if-match": if_match,
            "if-none-match": if_none_match,
            "if-modified-since": if_modified_since,
        }.items()
        if value is not None
    }
    get = decide("GET", headers, rep, new_boundary=lambda: BOUNDARY, max_ranges=10)
    spans = _spans(get)
    # Every span lies inside the file.
    assert all(0 <= s.start <= s.end < size for s in spans)
    # Parts never overlap (nor touch: touching parts are coalesced).
    ordered = sorted(spans)
    assert all(a.end + 1 < b.start for a, b in zip(ordered, ordered[1:], strict=False))
    # No header can make the answer larger than the file plus multipart framing.
    assert sum(s.length for s in spans) <= size
    framing = body_length(get.body) - sum(s.length for s in spans)
    assert framing <= (len(spans) + 1) * 200
    if "Content-Length" in get.headers:
        assert int(get.headers["Content-Length"]) == body_length(get.body)
    assert get.status in (200, 206, 304, 412, 416)
    # HEAD answers what a GET without Range would, minus the body.
    head = decide("HEAD", headers, rep, new_boundary=lambda: BOUNDARY, max_ranges=10)
    plain = {k: v for k, v in headers.items() if k not in ("range", "if-range")}
    get_plain = decide("GET", plain, rep, new_boundary=lambda: BOUNDARY, max_ranges=10)
    assert head.body == []
    assert head.status == get_plain.status
    assert head.headers == get_plain.headers


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(DECISION_HEADERS),
        st.text(max_size=80),
    ),
    sizes,
    st.sampled_from(["GET", "HEAD"]),
)
def test_any_header_text_never_raises(headers: dict[str, str], size: int, method: str) -> None:
    decide(method, headers, REP._replace(size=size), new_boundary=lambda: BOUNDARY)


def test_last_modified_in_the_future_is_announced_as_now() -> None:
    now = REP.last_modified - timedelta(seconds=30)
    decision = decide("GET", {}, REP, new_boundary=lambda: BOUNDARY, now=now)
    assert decision.headers["Date"] == decision.headers["Last-Modified"] == http_date(now)
    # And conditions compare against what was announced.
    again = decide(
        "GET", {"if-modified-since": http_date(now)}, REP, new_boundary=lambda: BOUNDARY, now=now
    )
    assert again.status == 304
