"""What a verification concludes, decided without I/O: what the catalog expects of one stored
object, what storage gave back, the problem between the two (if any), whether unnamed bytes
are an orphan, and the running tally with its summary line."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What can be wrong with stored bytes."""

    MISSING = "MISSING"
    SIZE = "SIZE"
    CORRUPT = "CORRUPT"
    UNREADABLE = "UNREADABLE"
    ORPHAN = "ORPHAN"


@dataclass(frozen=True)
class Expected:
    """What the catalog says of one stored object. Only originals have a size and digest in
    the catalog; a derived file (poster, thumbnail, playback copy) need only be readable."""

    media_id: str
    role: str
    key: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Reading:
    """What storage gave back for one key: nothing, an error, or its size and digest (no
    digest when it was not hashed, or not read because its size already condemns it)."""

    found: bool
    size: int | None = None
    sha256: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Problem:
    """One finding, printed as one line."""

    kind: Kind
    key: str
    media_id: str | None = None
    role: str | None = None
    expected_size: int | None = None
    found_size: int | None = None
    expected_sha256: str | None = None
    found_sha256: str | None = None
    reason: str | None = None
    stored_at: datetime | None = None

    def line(self) -> str:
        """``KIND`` first, then the media id and key, so the output can be grepped and cut."""
        where = self.key if self.media_id is None else f"{self.media_id} {self.key} {self.role}"
        match self.kind:
            case Kind.MISSING:
                return f"MISSING {where}"
            case Kind.SIZE:
                return f"SIZE {where} expected {self.expected_size} bytes, found {self.found_size}"
            case Kind.CORRUPT:
                return (
                    f"CORRUPT {where} expected sha256 {self.expected_sha256} "
                    f"got {self.found_sha256}"
                )
            case Kind.UNREADABLE:
                return f"UNREADABLE {where} {self.reason}"
            case Kind.ORPHAN:
                stored = _iso(self.stored_at) if self.stored_at else "at an unknown time"
                return (
                    f"ORPHAN {self.key} {self.found_size} bytes, stored {stored}, named by no row"
                )
        raise AssertionError(self.kind)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: the fields that apply to this kind."""
        fields = {
            "kind": str(self.kind),
            "key": self.key,
            "media_id": self.media_id,
            "role": self.role,
            "expected_size": self.expected_size,
            "found_size": self.found_size,
            "expected_sha256": self.expected_sha256,
            "found_sha256": self.found_sha256,
            "reason": self.reason,
            "stored_at": _iso(self.stored_at) if self.stored_at else None,
        }
        return {name: value for name, value in fields.items() if value is not None}


def worth_reading(expected: Expected, stored_size: int) -> bool:
    """Whether the bytes must be read: not when their size alone already condemns them."""
    return expected.size is None or expected.size == stored_size


def judge(expected: Expected, reading: Reading) -> Problem | None:
    """What is wrong with one object, if anything."""
    base = {"key": expected.key, "media_id": expected.media_id, "role": expected.role}
    if reading.error is not None:
        return Problem(Kind.UNREADABLE, reason=reading.error, **base)
    if not reading.found:
        return Problem(Kind.MISSING, **base)
    if expected.size is not None and reading.size != expected.size:
        return Problem(Kind.SIZE, expected_size=expected.size, found_size=reading.size, **base)
    if expected.sha256 is not None and reading.sha256 != expected.sha256:
        return Problem(
            Kind.CORRUPT,
            expected_sha256=expected.sha256,
            found_sha256=reading.sha256,
            **base,
        )
    return None


def is_orphan(stored_at: datetime, now: datetime, min_age_seconds: float) -> bool:
    """Whether bytes no row names are old enough to be an orphan rather than an upload whose
    rows are not committed yet (the start-up sweep waits as long before removing them)."""
    return (now - stored_at).total_seconds() >= min_age_seconds


@dataclass
class Tally:
    """What a run has done and found so far."""

    media: int = 0
    objects: int = 0
    bytes_read: int = 0
    original_bytes: int = 0
    problems: Counter[Kind] = field(default_factory=Counter)
    # Keys with no row but too young to judge: uploads in progress.
    recent: int = 0
    # Objects whose row changed while they were read (deleted, reprocessed): not judged.
    changed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, orphan_age_seconds: float) -> str:
        """The last line of the output."""
        rate = self.bytes_read / self.seconds / 1e6 if self.seconds > 0 else 0.0
        text = (
            f"checked {self.objects} objects of {self.media} media, {self.bytes_read:,} bytes read "
            f"in {self.seconds:.1f} s ({rate:.1f} MB/s): "
        )
        if self.problems:
            total = sum(self.problems.values())
            kinds = ", ".join(
                f"{self.problems[kind]} {kind.lower()}" for kind in Kind if self.problems[kind]
            )
            text += f"{total} problem{'s' if total != 1 else ''} ({kinds})"
        else:
            text += "no problems"
        if self.recent:
            text += (
                f"; {self.recent} object(s) stored less than {duration_text(orphan_age_seconds)} "
                "ago and not catalogued yet (uploads in progress) were not judged"
            )
        if self.changed:
            text += f"; {self.changed} object(s) changed in the catalog while being read"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "media": self.media,
            "objects": self.objects,
            "bytes": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "problem_counts": {str(kind): self.problems[kind] for kind in Kind},
            "recent_uncatalogued": self.recent,
            "changed_during_run": self.changed,
        }


def duration_text(seconds: float) -> str:
    """A wait as people say it: whole hours in hours, anything else in seconds."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
