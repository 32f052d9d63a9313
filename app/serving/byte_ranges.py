"""Byte ranges (RFC 9110 §14): parsing ``Range``, coalescing, and ``multipart/byteranges`` framing.

Pure functions: header text and sizes in, spans and bytes out.
"""

import re
from collections.abc import Iterator, Sequence

from app.storage.base import Span


class ByteRange(Span):
    """An inclusive span of byte positions, already clipped to the representation."""

    __slots__ = ()

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value announcing this span of a representation of ``size``."""
        return f"bytes {self.start}-{self.end}/{size}"


_DIGITS = re.compile(r"[0-9]+")
# Spans closer than this are sent as one part: a part header costs about as many bytes.
COALESCE_GAP_BYTES = 80
# Longer positions lie beyond any representation; they are compared exactly but never turned
# into an int (Python refuses numbers of more than 4,300 digits, and they are useless here).
_MAX_POSITION_DIGITS = 18
_BEYOND_ANY_SIZE = 10**_MAX_POSITION_DIGITS


def _value(digits: str) -> int:
    """The number ``digits`` spell, or a stand-in past any size when they are too many."""
    significant = digits.lstrip("0")
    if len(significant) > _MAX_POSITION_DIGITS:
        return _BEYOND_ANY_SIZE
    return int(significant or "0")


def _less(left: str, right: str) -> bool:
    """``left < right`` for digit strings of any length, without converting them."""
    left, right = left.lstrip("0"), right.lstrip("0")
    return (len(left), left) < (len(right), right)


def _elements(range_set: str) -> Iterator[str]:
    """The comma-separated elements of a list, one at a time (a header may hold a million)."""
    start = 0
    while True:
        comma = range_set.find(",", start)
        if comma < 0:
            yield range_set[start:]
            return
        yield range_set[start:comma]
        start = comma + 1


def parse_range(header: str, size: int, max_specs: int | None = None) -> list[ByteRange] | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Returns ``None`` when the header must be ignored (invalid syntax or a unit other than
    bytes, §14.2), an empty list when no spec is satisfiable (416), and otherwise the
    satisfiable spans, clipped to the size, in the order they were asked for. With
    ``max_specs``, a header holding more elements than that is ignored too (§14.2 lets a
    server ignore a Range it finds abusive), and parsing stops there.
    """
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip(" \t").lower() != "bytes":
        return None
    spans: list[ByteRange] = []
    seen_spec = False
    # Empty elements count too: a header of a million commas must stop as early.
    for count, element in enumerate(_elements(range_set), start=1):
        if max_specs is not None and count > max_specs:
            return None
        # The list rule (§5.6.1) lets recipients skip empty elements and optional whitespace.
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
            if last and _less(last, first):
                return None  # §14.1.1: an int-range with last-pos < first-pos is invalid
            start = _value(first)
            if start < size:
                end = _value(last) if last else size - 1
                spans.append(ByteRange(start, min(end, size - 1)))
        else:
            if not _DIGITS.fullmatch(last):
                return None
            suffix_length = _value(last)
            # §14.1.3: a suffix of zero bytes, or any suffix of an empty representation,
            # is unsatisfiable.
            if suffix_length > 0 and size > 0:
                spans.append(ByteRange(max(size - suffix_length, 0), size - 1))
    if not seen_spec:
        return None
    return spans


def coalesce(spans: Sequence[ByteRange], gap: int = COALESCE_GAP_BYTES) -> list[ByteRange]:
    """Merge spans that overlap or lie within ``gap`` bytes of each other.

    A merged span takes the place of the earliest-asked of its members, so parts still come
    in the order they were asked for (§14.6).
    """
    parts: list[tuple[int, int, int]] = []  # (order asked, start, end)
    for order, (start, end) in enumerate(spans):
        while touching := [p for p in parts if p[1] <= end + gap + 1 and start <= p[2] + gap + 1]:
            # Growing may bring further parts within reach: repeat until nothing touches.
            parts = [p for p in parts if p not in touching]
            order = min(order, *(p[0] for p in touching))
            start = min(start, *(p[1] for p in touching))
            end = max(end, *(p[2] for p in touching))
        parts.append((order, start, end))
    return [ByteRange(start, end) for _, start, end in sorted(parts)]


# A response body: literal bytes (multipart framing) and spans of the stored file.
BodyPart = bytes | ByteRange


def body_length(body: Sequence[BodyPart]) -> int:
    """The ``Content-Length`` of a body plan."""
    return sum(len(part) if isinstance(part, bytes) else part.length for part in body)


def multipart_byteranges(
    spans: Sequence[ByteRange], size: int, content_type: str, boundary: str
) -> list[BodyPart]:
    """The body of a ``multipart/byteranges`` answer (§14.6), CRLF line ends throughout."""
    body: list[BodyPart] = []
    for span in spans:
        head = (
            f"\r\n--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Range: {span.content_range(size)}\r\n\r\n"
        )
        body += [head.encode("latin-1"), span]
    body.append(f"\r\n--{boundary}--\r\n".encode("latin-1"))
    return body
