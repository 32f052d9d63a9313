"""The kinds of media the catalog tells apart, and how a content type maps to one."""

from typing import Literal

MediaKind = Literal["video", "audio", "image", "file"]

# Images a browser shows in <img>; anything else (TIFF, PSD…) is offered as a file.
_BROWSER_IMAGES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
    "image/x-icon",
    "image/vnd.microsoft.icon",
}


def media_kind(content_type: str) -> MediaKind:
    """How a page presents this type: in a player, as an image, or as a download."""
    if content_type.startswith("video/"):
        return "video"
    if content_type.startswith("audio/"):
        return "audio"
    if content_type in _BROWSER_IMAGES:
        return "image"
    return "file"
