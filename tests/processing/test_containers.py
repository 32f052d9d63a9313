"""Choosing ffmpeg's demuxer from a file's first bytes, from an allow-list."""

import pytest

from app.processing.containers import (
    ALLOWED_DEMUXERS,
    input_arguments,
    sniff_container,
)

HLS = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n/srv/private/video.mp4\n#EXT-X-ENDLIST\n"
DASH = b'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>file:///'
TS = b"".join(b"\x47" + bytes(187) for _ in range(4))


@pytest.mark.parametrize(
    ("head", "demuxer"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mov"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "mov"),
        (b"\x00\x00\x00\x08wide\x00\x01\x00\x00mdat", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp_pipe"),
        (bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(8), "asf"),
        (TS, "mpegts"),
        (b"".join(b"\x00\x00\x00\x00\x47" + bytes(187) for _ in range(4)), "mpegts"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00", "mpeg"),
        (b"OggS\x00\x02\x00\x00", "ogg"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"ID3\x04\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00", "mp3"),
        (b"\xff\xf1\x50\x80\x02", "aac"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png_pipe"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg_pipe"),
        (b"GIF89a\x01\x00\x01\x00", "gif"),
        (b"BM" + bytes(20), "bmp_pipe"),
    ],
)
def test_real_containers_get_their_own_demuxer(head: bytes, demuxer: str) -> None:
    container = sniff_container(head)
    assert container is not None
    assert container.demuxer == demuxer
    assert demuxer in ALLOWED_DEMUXERS


@pytest.mark.parametrize(
    "head",
    [
        HLS,
        b"\xef\xbb\xbf" + HLS,  # with a byte-order mark
        DASH,
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
        b"[playlist]\nFile1=/srv/private.mp4\n",  # PLS
        b"#EXTM3U\n",
        b"<?xml version='1.0'?><smil>",
        b"",
        b"\xff\xfb",  # too short to tell
        b"\x47" + bytes(187) + b"\x00",  # one sync byte is no transport stream
        b"RIFF\x00\x00\x00\x00CDXA",
        b"%PDF-1.7\n",
    ],
)
def test_playlists_scripts_and_unknown_content_are_refused(head: bytes) -> None:
    assert sniff_container(head) is None


def test_quicktime_never_follows_external_references() -> None:
    container = sniff_container(b"\x00\x00\x00\x20ftypqt  \x00\x00\x00\x00")
    assert container is not None
    args = input_arguments(container, "/media/objects/ab/abcd")
    assert args[:4] == ["-f", "mov", "-protocol_whitelist", "file"]
    assert args[args.index("-enable_drefs") + 1] == "0"
    assert args[-2:] == ["-i", "file:/media/objects/ab/abcd"]


def test_no_playlist_or_reference_demuxer_is_ever_allowed() -> None:
    dangerous = {"hls", "dash", "concat", "ffconcat", "image2", "image2pipe", "mpjpeg", "tee"}
    assert not ALLOWED_DEMUXERS & dangerous
