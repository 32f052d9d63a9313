"""Reading the top-level atom order of an MP4/QuickTime file."""

import os
from pathlib import Path


def moov_before_mdat(path: Path) -> bool | None:
    """Whether the index (moov) precedes the media data (mdat): "faststart".

    ``None`` when the file has no such atoms where expected (not an MP4, or truncated).
    """
    with path.open("rb") as handle:
        size_of_file = os.fstat(handle.fileno()).st_size
        position = 0
        while position + 8 <= size_of_file:
            handle.seek(position)
            header = handle.read(16)
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8]
            if kind in (b"moov", b"mdat"):
                return kind == b"moov"
            if size == 1:  # a 64-bit size follows the type
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:  # the atom runs to the end of the file
                return None
            if size < 8:
                return None
            position += size
    return None
