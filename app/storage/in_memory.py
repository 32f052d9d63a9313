"""A ``ByteSource`` over a few bytes held in memory: small generated answers (playlists) sent
by the same engine as stored files, with the same ranges and conditions."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from app.storage.base import Span


class _Slice:
    def __init__(self, data: memoryview) -> None:
        self._data = data

    async def read(self, max_bytes: int) -> bytes:
        piece, self._data = self._data[:max_bytes], self._data[max_bytes:]
        return bytes(piece)

    async def aclose(self) -> None:
        self._data = memoryview(b"")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    async def stream(self, span: Span) -> _Slice:
        return _Slice(self._data[span.start : span.end + 1])


class InMemorySource:
    """Bytes already in memory, small by construction (the caller bounds them)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read_spans(self, spans: Sequence[Span]) -> list[bytes]:
        return [self.data[span.start : span.end + 1] for span in spans]

    @asynccontextmanager
    async def open(self) -> AsyncIterator[_Reader]:
        yield _Reader(self.data)
