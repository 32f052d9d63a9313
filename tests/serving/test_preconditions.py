"""Conditional requests, evaluated in RFC 9110 §13.2.2 order."""

from datetime import UTC, datetime

import pytest

from app.serving.preconditions import (
    Outcome,
    evaluate,
    if_range_allows_range,
    parse_entity_tags,
    parse_http_date,
)

ETAG = '"abc"'
LAST_MODIFIED = datetime(2026, 11, 25, 13, 4, 5, tzinfo=UTC)
AT = "Wed, 25 Nov 2026 13:04:05 GMT"
BEFORE = "Wed, 25 Nov 2026 13:04:04 GMT"
AFTER = "Wed, 25 Nov 2026 13:04:06 GMT"
P, N, F = Outcome.PROCEED, Outcome.NOT_MODIFIED, Outcome.FAILED


@pytest.mark.parametrize(
    ("method", "if_match", "ius", "inm", "ims", "expected"),
    [
        ("GET", None, None, None, None, P),
        # If-Match: strong comparison, lists, *.
        ("GET", '"abc"', None, None, None, P),
        ("GET", '"x", "abc"', None, None, None, P),
        ("GET", "*", None, None, None, P),
        ("GET", '"x"', None, None, None, F),
        ("GET", 'W/"abc"', None, None, None, F),
        ("GET", "garbage", None, None, None, F),
        # If-Unmodified-Since, only without If-Match.
        ("GET", None, AT, None, None, P),
        ("GET", None, AFTER, None, None, P),
        ("GET", None, BEFORE, None, None, F),
        ("GET", '"abc"', BEFORE, None, None, P),
        ("GET", None, "not a date", None, None, P),
        # If-None-Match: weak comparison; 304 for GET/HEAD.
        ("GET", None, None, '"abc"', None, N),
        ("HEAD", None, None, 'W/"abc"', None, N),
        ("GET", None, None, '"x", W/"abc"', None, N),
        ("GET", None, None, "*", None, N),
        ("GET", None, None, '"x"', None, P),
        ("GET", None, None, "garbage", None, P),
        # If-Modified-Since: only without If-None-Match (nginx lets it win; RFC does not).
        ("GET", None, None, None, AT, N),
        ("GET", None, None, None, AFTER, N),
        ("GET", None, None, None, BEFORE, P),
        ("GET", None, None, '"x"', AT, P),
        ("GET", None, None, None, "garbage", P),
        ("GET", None, None, None, f"{AT}, {AT}", P),
        # Order: a failed If-Match wins over a matching If-None-Match.
        ("GET", '"x"', None, '"abc"', None, F),
        ("GET", None, BEFORE, '"abc"', None, F),
        ("GET", '"abc"', None, '"abc"', None, N),
    ],
)
def test_evaluate(
    method: str,
    if_match: str | None,
    ius: str | None,
    inm: str | None,
    ims: str | None,
    expected: Outcome,
) -> None:
    assert evaluate(method, if_match, ius, inm, ims, ETAG, LAST_MODIFIED) is expected


def test_if_none_match_on_unsafe_method_fails() -> None:
    assert evaluate("DELETE", None, None, '"abc"', None, ETAG, LAST_MODIFIED) is F
    assert evaluate("DELETE", None, None, None, AT, ETAG, LAST_MODIFIED) is P


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"a"', [(False, '"a"')]),
        ('"a", W/"b" ,,"c"', [(False, '"a"'), (True, '"b"'), (False, '"c"')]),
        ('""', [(False, '""')]),
        ("", []),
        ("a", None),
        ('"a" "b"', None),
        ('"a', None),
        ('w/"a"', None),
    ],
)
def test_parse_entity_tags(value: str, expected: list[tuple[bool, str]] | None) -> None:
    assert parse_entity_tags(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 25 Nov 2026 13:04:05 GMT",
        "Wednesday, 25-Nov-26 13:04:05 GMT",
        "Wed Nov 25 13:04:05 2026",
    ],
)
def test_all_three_http_date_forms(value: str) -> None:
    assert parse_http_date(value) == LAST_MODIFIED


@pytest.mark.parametrize(
    ("if_range", "allowed"),
    [
        ('"abc"', True),
        ('"abd"', False),
        ('W/"abc"', False),
        (AT, True),
        (BEFORE, False),
        (AFTER, False),  # a date validates a range only when it is exactly Last-Modified
        ("garbage", False),
    ],
)
def test_if_range(if_range: str, allowed: bool) -> None:
    assert if_range_allows_range(if_range, ETAG, LAST_MODIFIED) is allowed
