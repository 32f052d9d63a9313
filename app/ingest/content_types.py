"""What kind of bytes a file holds, from its name and its first bytes."""

import mimetypes

import filetype

SNIFF_BYTES = 8192
OCTET_STREAM = "application/octet-stream"

# Types whose extension the standard table lacks or gets wrong on some systems.
_EXTRA_TYPES = {
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".mov": "video/quicktime",
    ".ts": "video/mp2t",
    ".webp": "image/webp",
    ".avif": "image/avif",
}


def guess_content_type(filename: str, head: bytes) -> str:
    """The content type of a file named ``filename`` that starts with ``head``.

    Magic numbers win over the extension, except that an audio extension on a container that
    also carries video (``.m4a`` in MP4, ``.weba`` in WebM) keeps the audio type.
    """
    by_name = _type_from_name(filename)
    sniffed = filetype.guess_mime(head) if head else None
    if sniffed is None:
        return by_name or OCTET_STREAM
    if by_name and by_name.startswith("audio/") and sniffed.startswith("video/"):
        return by_name
    return sniffed


def _type_from_name(filename: str) -> str | None:
    suffix = "." + filename.rpartition(".")[2].lower() if "." in filename else ""
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed
