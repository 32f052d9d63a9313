"""Original file names and titles kept as metadata."""

import pytest

from app.catalog.kinds import media_kind
from app.ingest.content_types import guess_content_type
from app.ingest.filenames import normalize_title, sanitize_filename, title_from_filename
from app.ingest.ingestion import upload_titles


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("movie.mp4", "movie.mp4"),
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\me\\clip.mov", "clip.mov"),
        ("a\x00b\nc\x1b.txt", "abc.txt"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("..", ""),
        ("../..", ""),
        ("\x00\x01", ""),
        ("  .hidden  ", "hidden"),
        ("Cafe\u0301.mp3", "Café.mp3"),
        ("<script>alert(1)</script>.mp4", "script>.mp4"),
    ],
)
def test_sanitize_filename(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_long_name_is_bounded_and_keeps_extension() -> None:
    name = sanitize_filename("x" * 5000 + ".mp4")
    assert name.endswith(".mp4")
    assert len(name.encode()) <= 255


def test_long_multibyte_name_is_cut_on_a_character_boundary() -> None:
    name = sanitize_filename("é" * 300 + ".mkv")
    assert name.endswith(".mkv")
    assert len(name.encode()) <= 255
    assert set(name[:-4]) == {"é"}


def test_title_from_filename_drops_extension() -> None:
    assert title_from_filename("holiday.2026.mp4") == "holiday.2026"
    assert title_from_filename("README") == "README"
    assert title_from_filename(".mp4") == ".mp4"


def test_normalize_title_collapses_whitespace_and_controls() -> None:
    assert normalize_title("  a\tb\n\nc\x00d  ") == "a b cd"


def test_upload_titles() -> None:
    assert upload_titles(None, ["a.mp4", "b.mp3"]) == ["a", "b"]
    assert upload_titles("Trip", ["a.mp4"]) == ["Trip"]
    assert upload_titles("Trip", ["a.mp4", "b.mp3"]) == ["Trip — a", "Trip — b"]


MP4_HEAD = b"\x00\x00\x00\x18ftypmp42" + bytes(300)


@pytest.mark.parametrize(
    ("filename", "head", "expected"),
    [
        ("clip.mp4", MP4_HEAD, "video/mp4"),
        ("clip.bin", MP4_HEAD, "video/mp4"),
        ("song.m4a", MP4_HEAD, "audio/mp4"),
        ("notes.txt", b"hello", "text/plain"),
        ("photo.png", b"not really a png", "image/png"),
        ("pic", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png"),
        ("mystery", b"\x01\x02\x03", "application/octet-stream"),
        ("empty.mkv", b"", "video/x-matroska"),
    ],
)
def test_guess_content_type(filename: str, head: bytes, expected: str) -> None:
    assert guess_content_type(filename, head) == expected


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("video/mp4", "video"),
        ("audio/mpeg", "audio"),
        ("image/png", "image"),
        ("image/tiff", "file"),
        ("application/pdf", "file"),
    ],
)
def test_media_kind(content_type: str, kind: str) -> None:
    assert media_kind(content_type) == kind
