"""Original file names, made safe to keep as metadata and to show."""

import unicodedata

from app.catalog.models import FILENAME_MAX_CHARS

_MAX_UTF8_BYTES = 255  # what common filesystems allow, should a user save it under this name


def _without_invisible(text: str) -> str:
    # Cc: control characters (newlines, NUL, ESC); Cf: invisible formatting such as U+202E,
    # which can make "exe.mp4" display as "4pm.exe".
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))


def sanitize_filename(raw: str) -> str:
    """The last path component of ``raw``, without control or format characters, bounded in length.

    Returns ``""`` when nothing usable is left (``"../.."``, only control characters); callers
    treat that as a missing name.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = _without_invisible(name)
    name = name.strip(" .")
    return _truncate_keeping_extension(name)


def _truncate_keeping_extension(name: str) -> str:
    if len(name) <= FILENAME_MAX_CHARS and len(name.encode()) <= _MAX_UTF8_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    budget = _MAX_UTF8_BYTES - len(suffix.encode())
    kept = stem.encode()[:budget].decode(errors="ignore")
    kept = kept[: FILENAME_MAX_CHARS - len(suffix)]
    return kept + suffix


def title_from_filename(filename: str) -> str:
    """A readable default title: the name without its extension."""
    stem, dot, _ = filename.rpartition(".")
    return stem if dot and stem else filename


def normalize_title(raw: str) -> str:
    """A title on one line: NFC, no control characters, runs of whitespace collapsed."""
    spaced = "".join(" " if c.isspace() else c for c in unicodedata.normalize("NFC", raw))
    return " ".join(_without_invisible(spaced).split())
