"""What every storage backend offers: the seam between the portal and where bytes live."""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from app.storage.free_space import FreeSpace
from app.storage.scratch import PartialFile, ScratchDir


class Span(NamedTuple):
    """An inclusive span of byte positions within stored bytes."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class StoredObject:
    """A key found in storage, how many bytes it holds, and when they were stored."""

    key: str
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class ObjectInfo:
    """Size and modification time of stored bytes."""

    size: int
    modified_at: datetime


class UploadSink(Protocol):
    """Bytes on their way into storage under ``key``; stored only once committed."""

    key: str

    async def write(self, data: bytes | memoryview) -> None:
        """Append all of ``data``; the caller may reuse its buffer once this returns."""

    async def commit(self) -> None:
        """Make the bytes durable under ``key``."""

    async def discard(self) -> None:
        """Leave nothing behind of an upload that will not be committed."""


class SpanStream(Protocol):
    """The bytes of one span, read in pieces."""

    async def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what follows; ``b""`` at the end of the span."""

    async def aclose(self) -> None:
        """Stop reading and release what the stream holds."""


class SpanReader(Protocol):
    """Stored bytes open for streaming, span after span."""

    async def stream(self, span: Span) -> SpanStream:
        """Start reading one span; ``FileNotFoundError`` when the bytes are gone."""


class ByteSource(Protocol):
    """The stored bytes under one key, ready to be read."""

    async def read_spans(self, spans: Sequence[Span]) -> list[bytes]:
        """Every span whole, for bodies that fit in memory at once."""

    def open(self) -> AbstractAsyncContextManager[SpanReader]:
        """Open the bytes for streaming; ``FileNotFoundError`` when they are gone."""


CatalogKeys = Callable[[], Awaitable[set[str]]]


class Storage(Protocol):
    """Where bytes live: created, read, copied out for ffmpeg, deleted, swept."""

    scratch: ScratchDir
    # The local disk's free space: where uploads go on local storage, and on every backend
    # where scratch files (ffmpeg's copies and outputs) go.
    free_space: FreeSpace

    def check_room(self, incoming_bytes: int) -> None:
        """Refuse (``InsufficientStorage``) an upload of ``incoming_bytes`` that would eat into
        the local disk's reserve; object stores have no reserve to keep."""

    async def prepare(self) -> None:
        """Get ready to serve (directories, a client); fails early when misconfigured."""

    async def close(self) -> None:
        """Release what ``prepare`` acquired."""

    async def open_upload(self, size_hint: int | None = None) -> UploadSink:
        """Start storing new bytes under a fresh key; ``size_hint``, when the size is known
        beforehand, lets the backend size its pieces (S3 parts) for it."""

    async def store_scratch(self, partial: PartialFile) -> str:
        """Store a complete scratch file under a fresh key and return the key; the scratch
        file is gone afterwards, stored or not."""

    def source(self, key: str) -> ByteSource:
        """The bytes under ``key`` for reading (nothing is opened yet)."""

    def local_copy(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local file with the bytes under ``key``, for tools that need a path."""

    async def info(self, key: str) -> ObjectInfo:
        """Size and time of the bytes under ``key``; ``FileNotFoundError`` when gone."""

    async def delete(self, key: str) -> None:
        """Remove the bytes under ``key``; already gone is fine."""

    def listing(self) -> AsyncIterator[StoredObject]:
        """Every key that has bytes in storage, with its size, in no particular order."""

    async def sweep(self, catalog_keys: CatalogKeys) -> None:
        """Remove what crashed processes left behind: scratch files, uploads in flight, and
        stored bytes no catalog row points at."""
