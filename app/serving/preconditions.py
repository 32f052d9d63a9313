"""Conditional requests (RFC 9110 §13): entity-tag lists, dates, and their evaluation order."""

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


class Outcome(Enum):
    """What the preconditions leave for the request."""

    PROCEED = "proceed"
    NOT_MODIFIED = "not modified"  # 304
    FAILED = "precondition failed"  # 412


def parse_entity_tags(value: str) -> list[tuple[bool, str]] | None:
    """``(weak, opaque-tag)`` pairs of an ``If-Match``/``If-None-Match`` list, ``[]`` for ``*``
    is not represented here; ``None`` when the value is not a valid list."""
    tags: list[tuple[bool, str]] = []
    position = 0
    text = value.strip()
    while position < len(text):
        if text[position] in ", \t":
            position += 1  # empty list elements are allowed (§5.6.1)
            continue
        match = _ENTITY_TAG.match(text, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags


_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"\d\d:\d\d:\d\d"
_HTTP_DATE = re.compile(
    rf"{_DAY}, \d\d {_MONTH} \d{{4}} {_TIME} GMT"  # IMF-fixdate
    rf"|{_LONG_DAY}, \d\d-{_MONTH}-\d\d {_TIME} GMT"  # obsolete RFC 850
    rf"|{_DAY} {_MONTH} [ \d]\d {_TIME} \d{{4}}"  # obsolete asctime
)


def parse_http_date(value: str) -> datetime | None:
    """An HTTP-date (§5.6.7), or ``None`` when the value is not exactly one valid date."""
    value = value.strip(" \t")
    if not _HTTP_DATE.fullmatch(value):
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    # asctime dates carry no zone; all three HTTP-date forms are UTC by definition.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _strong_match(tags: list[tuple[bool, str]], etag: str) -> bool:
    # §8.8.3.2: strong comparison needs both tags strong and identical.
    return any(not weak and tag == etag for weak, tag in tags)


def _weak_match(tags: list[tuple[bool, str]], etag: str) -> bool:
    return any(tag == etag for _, tag in tags)


def evaluate(
    method: str,
    if_match: str | None,
    if_unmodified_since: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    last_modified: datetime,
) -> Outcome:
    """Evaluate the preconditions of a request on an existing representation, in the order of
    §13.2.2. ``etag`` is the strong tag with quotes; ``last_modified`` is to the second."""
    # Step 1, else step 2: If-Unmodified-Since counts only without If-Match.
    if if_match is not None:
        if if_match.strip() != "*":
            tags = parse_entity_tags(if_match)
            if tags is None or not _strong_match(tags, etag):
                return Outcome.FAILED
    elif if_unmodified_since is not None:
        date = parse_http_date(if_unmodified_since)
        if date is not None and last_modified > date:
            return Outcome.FAILED
    # Step 3, else step 4: If-Modified-Since counts only without If-None-Match, on GET/HEAD.
    safe = method in ("GET", "HEAD")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            matched = True
        else:
            tags = parse_entity_tags(if_none_match)
            matched = tags is not None and _weak_match(tags, etag)
        if matched:
            return Outcome.NOT_MODIFIED if safe else Outcome.FAILED
    elif if_modified_since is not None and safe:
        date = parse_http_date(if_modified_since)
        if date is not None and last_modified <= date:
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def if_range_allows_range(if_range: str, etag: str, last_modified: datetime) -> bool:
    """§13.1.5: the range applies only if the strong ETag or the exact date still matches."""
    value = if_range.strip()
    if value.startswith('"'):
        return value == etag
    if value.startswith("W/"):
        return False  # a weak tag can never validate a range
    date = parse_http_date(value)
    return date is not None and date == last_modified
