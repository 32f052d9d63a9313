"""What to answer a GET or HEAD for stored bytes: status, headers, and the body to send.

Pure: header strings and facts about the stored representation go in, a ``Decision`` comes
out. RFC 9110 sections are cited where a rule is subtle.
"""

import base64
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote

from app.serving.byte_ranges import (
    BodyPart,
    ByteRange,
    body_length,
    coalesce,
    multipart_byteranges,
    parse_range,
)
from app.serving.preconditions import Outcome, evaluate, if_range_allows_range

# Request headers the decision reads; a field sent on several lines arrives joined by ", ".
DECISION_HEADERS = (
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
)
DEFAULT_MAX_RANGES = 100


class Representation(NamedTuple):
    """What the decision needs to know about the stored bytes. ``sha256`` (hex), when known,
    is announced as ``Repr-Digest``."""

    size: int
    etag: str
    last_modified: datetime
    content_type: str
    sha256: str | None = None

    @property
    def last_modified_second(self) -> datetime:
        # HTTP dates have one-second resolution; comparisons happen at that resolution.
        return self.last_modified.astimezone(UTC).replace(microsecond=0)


class Decision(NamedTuple):
    """The status, the headers that depend on the decision, and the body to send (empty for
    HEAD, 304, 412 and 416)."""

    status: int
    headers: dict[str, str]
    body: list[BodyPart]


def decide(
    method: str,
    headers: Mapping[str, str],
    rep: Representation,
    *,
    new_boundary: Callable[[], str],
    max_ranges: int = DEFAULT_MAX_RANGES,
    now: datetime | None = None,
) -> Decision:
    """Decide how to answer ``method`` (GET or HEAD) for ``rep`` given the request headers.

    ``new_boundary`` is called only when a ``multipart/byteranges`` answer is chosen. With
    ``now``, the answer carries it as ``Date``, and ``Last-Modified`` is never later (§8.8.2.1:
    a clock set back, or bytes stored within the current second, must not announce a future).
    """
    if now is not None and rep.last_modified > now:
        rep = rep._replace(last_modified=now)
    validators = {
        **({"Date": http_date(now)} if now is not None else {}),
        "ETag": rep.etag,
        "Last-Modified": http_date(rep.last_modified),
    }
    outcome = evaluate(
        method,
        headers.get("if-match"),
        headers.get("if-unmodified-since"),
        headers.get("if-none-match"),
        headers.get("if-modified-since"),
        rep.etag,
        rep.last_modified_second,
    )
    if outcome is Outcome.NOT_MODIFIED:
        return Decision(304, validators, [])
    if outcome is Outcome.FAILED:
        return Decision(412, {**validators, "Content-Length": "0"}, [])

    whole = [ByteRange(0, rep.size - 1)] if rep.size else []
    full = Decision(
        200,
        {
            **validators,
            "Content-Type": rep.content_type,
            "Content-Length": str(rep.size),
            **({"Repr-Digest": repr_digest(rep.sha256)} if rep.sha256 else {}),
        },
        whole if method == "GET" else [],
    )
    spans = _requested_spans(method, headers, rep, max_ranges)
    if spans is None:
        return full
    if not spans:
        return Decision(
            416,
            {**validators, "Content-Range": f"bytes */{rep.size}", "Content-Length": "0"},
            [],
        )
    if len(spans) == 1:
        [span] = spans
        return Decision(
            206,
            {
                **validators,
                "Content-Type": rep.content_type,
                "Content-Range": span.content_range(rep.size),
                "Content-Length": str(span.length),
            },
            [span],
        )
    boundary = new_boundary()
    body = multipart_byteranges(spans, rep.size, rep.content_type, boundary)
    return Decision(
        206,
        {
            **validators,
            "Content-Type": f"multipart/byteranges; boundary={boundary}",
            "Content-Length": str(body_length(body)),
        },
        body,
    )


def _requested_spans(
    method: str, headers: Mapping[str, str], rep: Representation, max_ranges: int
) -> list[ByteRange] | None:
    """The spans to send, ``[]`` for 416, or ``None`` to send the whole representation."""
    range_header = headers.get("range")
    # §14.2: Range applies to GET only; a HEAD answers what a plain GET would.
    if method != "GET" or range_header is None:
        return None
    if_range = headers.get("if-range")
    if if_range is not None and not if_range_allows_range(
        if_range, rep.etag, rep.last_modified_second
    ):
        return None
    # §14.2 lets a server ignore a Range it finds abusive. Sending the whole representation
    # instead bounds any answer by the file size, whatever the header asks (CVE-2011-3192);
    # parsing stops at the limit, so no header costs more than that to look at.
    spans = parse_range(range_header, rep.size, max_specs=max_ranges)
    if spans is None or not spans:
        return spans
    if sum(span.length for span in spans) > rep.size:
        return None
    return coalesce(spans)


def strong_etag(sha256_hex: str) -> str:
    """A strong entity tag derived from the stored bytes' digest: stable across restarts."""
    return f'"{sha256_hex}"'


def repr_digest(sha256_hex: str) -> str:
    """The ``Repr-Digest`` value (RFC 9530) of the whole representation."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"


def http_date(moment: datetime) -> str:
    """An IMF-fixdate (§5.6.7) for ``moment``, which must be timezone-aware."""
    return _http_date_of_second(int(moment.timestamp()))


@lru_cache(maxsize=1024)
def _http_date_of_second(second: int) -> str:
    # Formatting costs more than the rest of a small answer's headers: each second (the
    # current one for Date, a media's for Last-Modified) is formatted once.
    return format_datetime(datetime.fromtimestamp(second, UTC), usegmt=True)


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
