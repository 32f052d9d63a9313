"""Where the bytes live: local files under the media directory, or an S3-compatible bucket."""

from app.config import Settings
from app.storage.base import ByteSource, ObjectInfo, SpanReader, SpanStream, Storage, UploadSink
from app.storage.local import LocalStorage
from app.storage.scratch import PartialFile

__all__ = [
    "ByteSource",
    "LocalStorage",
    "ObjectInfo",
    "PartialFile",
    "SpanReader",
    "SpanStream",
    "Storage",
    "UploadSink",
    "create_storage",
]


def create_storage(settings: Settings) -> Storage:
    """The backend ``settings.storage`` names (not prepared yet)."""
    if settings.storage == "s3":
        # Imported here: the local default never loads the S3 client.
        from app.storage.s3 import S3Storage

        return S3Storage(settings)
    return LocalStorage(settings.media_dir)
