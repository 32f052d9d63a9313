"""Pure HTTP decisions for byte serving: ranges, validators, Content-Disposition.

Nothing here does I/O: header strings and facts about the stored representation go in, a
decision comes out. RFC 9110 sections are cited where a rule is subtle.
"""

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import quote


class ByteRange(NamedTuple):
    """An inclusive span of byte positions, already clipped to the representation."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value announcing this span of a representation of ``size``."""
        return f"bytes {self.start}-{self.end}/{size}"


_DIGITS = re.compile(r"[0-9]+")


def parse_range(header: str, size: int) -> list[ByteRange] | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Returns ``None`` when the header must be ignored (invalid syntax or a unit other than
    bytes, RFC 9110 §14.2), an empty list when no spec is satisfiable (416), and otherwise the
    satisfiable spans, clipped to the size, in the order they were asked for.
    """
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip(" \t").lower() != "bytes":
        return None
    spans: list[ByteRange] = []
    seen_spec = False
    # The list rule (§5.6.1) lets recipients skip empty elements and optional whitespace.
    for element in range_set.split(","):
        spec = element.strip(" \t")
        if not spec:
            continue
        seen_spec = True
        first, dash, last = spec.partition("-")
        if not dash:
            return None
        if first:
            if not _DIGITS.fullmatch(first) or (last and not _DIGITS.fullmatch(last)):
                return None
            start = int(first)
            end = int(last) if last else size - 1
            if last and end < start:
                return None  # §14.1.1: an int-range with last-pos < first-pos is invalid
            if start < size:
                spans.append(ByteRange(start, min(end, size - 1)))
        else:
            if not _DIGITS.fullmatch(last):
                return None
            suffix_length = int(last)
            # §14.1.3: a suffix of zero bytes, or any suffix of an empty representation,
            # is unsatisfiable.
            if suffix_length > 0 and size > 0:
                spans.append(ByteRange(max(size - suffix_length, 0), size - 1))
    if not seen_spec:
        return None
    return spans


def unsatisfied_content_range(size: int) -> str:
    """The ``Content-Range`` of a 416 answer (RFC 9110 §14.4)."""
    return f"bytes */{size}"


def strong_etag(sha256_hex: str) -> str:
    """A strong entity tag derived from the stored bytes' digest: stable across restarts."""
    return f'"{sha256_hex}"'


def http_date(moment: datetime) -> str:
    """An IMF-fixdate (RFC 9110 §5.6.7) for ``moment``, which must be timezone-aware."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


_UNSAFE_IN_QUOTED = re.compile(r'[\x00-\x1f\x7f"\\%/;]')


def content_disposition(disposition: str, filename: str) -> str:
    """A ``Content-Disposition`` value per RFC 6266, with ``filename*`` (RFC 8187) when needed.

    The plain ``filename`` is an ASCII fallback for old clients; ``filename*`` carries the
    exact UTF-8 name and wins wherever it is understood.
    """
    fallback = _ascii_fallback(filename)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def _ascii_fallback(filename: str) -> str:
    decomposed = unicodedata.normalize("NFKD", filename)
    ascii_only = "".join(
        c if c.isascii() else "_" for c in decomposed if not unicodedata.combining(c)
    )
    return _UNSAFE_IN_QUOTED.sub("_", ascii_only) or "download"


class Representation(NamedTuple):
    """What the decision needs to know about the stored bytes."""

    size: int
    etag: str
    last_modified: datetime


class Decision(NamedTuple):
    """What to answer: a status, the byte span to send (``None`` for all or nothing), and
    the headers that depend on the decision."""

    status: int
    span: ByteRange | None
    headers: dict[str, str]


def decide(method: str, headers: Mapping[str, str], rep: Representation) -> Decision:
    """Decide how to answer a GET or HEAD for ``rep`` given the request ``headers``."""
    full = Decision(200, None, {"Content-Length": str(rep.size)})
    range_header = headers.get("range")
    # §14.2: Range applies to GET only; a HEAD answers what a plain GET would.
    if method != "GET" or range_header is None:
        return full
    if_range = headers.get("if-range")
    if if_range is not None and not _if_range_matches(if_range, rep):
        return full
    spans = parse_range(range_header, rep.size)
    if spans is None:
        return full
    if not spans:
        return Decision(416, None, {"Content-Range": unsatisfied_content_range(rep.size)})
    if len(spans) > 1:
        # Multiple ranges are answered whole until multipart/byteranges is sent (§14.2 lets
        # a server ignore Range).
        return full
    span = spans[0]
    return Decision(
        206,
        span,
        {"Content-Range": span.content_range(rep.size), "Content-Length": str(span.length)},
    )


def _if_range_matches(if_range: str, rep: Representation) -> bool:
    """§13.1.5: a strong ETag compared exactly, or a date equal to Last-Modified."""
    value = if_range.strip()
    if value.startswith('"'):
        return value == rep.etag
    if value.startswith("W/"):
        return False
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    if moment.tzinfo is None:
        return False
    return moment == rep.last_modified.astimezone(UTC).replace(microsecond=0)
