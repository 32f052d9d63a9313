"""Where the bytes live: local files under the media directory, or an S3-compatible bucket.

Owns the ``Storage`` protocol (``base``), generated keys, locked scratch files, the ``local``
and ``s3`` backends and the per-process cache of stored sizes. Imports only ``config`` and
``errors``; knows nothing of the catalog or HTTP.
"""

from app.config import Settings
from app.storage.base import (
    ByteSource,
    ObjectInfo,
    Span,
    SpanReader,
    SpanStream,
    Storage,
    StoredObject,
    UploadSink,
)
from app.storage.local import LocalStorage
from app.storage.scratch import PartialFile

__all__ = [
    "ByteSource",
    "LocalStorage",
    "ObjectInfo",
    "PartialFile",
    "Span",
    "SpanReader",
    "SpanStream",
    "Storage",
    "StoredObject",
    "UploadSink",
    "create_storage",
]


def create_storage(settings: Settings) -> Storage:
    """The backend ``settings.storage`` names (not prepared yet)."""
    if settings.storage == "s3":
        # Imported here: the local default never loads the S3 client.
        from app.storage.s3 import S3Storage

        return S3Storage(settings)
    return LocalStorage(settings.media_dir, settings.min_free_bytes)
