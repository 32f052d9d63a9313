"""Multipart request body → storage uploads, hashed and counted while they are written.

The body is parsed as it arrives with python-multipart's push parser; file bytes go straight
into storage uploads (a partial file, or an S3 multipart upload) in large writes, and nothing
is committed here: the caller commits the uploads once the whole request has been read (see
``app.ingest``).
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from app.catalog.models import TITLE_MAX_CHARS
from app.config import VISIBILITIES
from app.errors import (
    BadUpload,
    StreamportError,
    UnsupportedUpload,
    UploadAborted,
    UploadTooLarge,
)
from app.ingest.content_types import SNIFF_BYTES, guess_content_type
from app.ingest.filenames import normalize_title, sanitize_filename
from app.storage import Storage, UploadSink
from app.storage.scratch import Ledger

FILE_FIELD = "file"
TITLE_FIELD = "title"
VISIBILITY_FIELD = "visibility"
WRITE_CHUNK_BYTES = 1024 * 1024
# A file's first buffer: a small file never costs a whole write chunk of memory; buffers grow
# fourfold with each write up to WRITE_CHUNK_BYTES.
FIRST_BUFFER_BYTES = 64 * 1024
# Upload buffers of all files being received by one process together (see ReceiveBudget).
RECEIVE_BUDGET_BYTES = 32 * 2**20
# Everything of the body that is not file bytes: boundaries, part headers, fields, preamble.
FORM_OVERHEAD_BYTES = 1024 * 1024
_MAX_TITLE_FIELD_BYTES = 64 * 1024
_MAX_FILES = 1000
# Files plus a few fields; parts past this are refused however small.
_MAX_PARTS = _MAX_FILES + 24
# RFC 2046 §5.1.1 allows 70; python-multipart refuses more than 256 with an error of its own.
_MAX_BOUNDARY_BYTES = 200
# Part headers carry the file name; long enough for any real one (and for a hostile 5,000
# characters, which is then cut down), bounded so headers cannot eat memory.
_MAX_PART_HEADER_BYTES = 64 * 1024


class ReceiveBudget:
    """A per-process budget of upload buffer memory, shared by the files being received.

    A file asks for larger buffers as it streams (64 KiB, then up to 1 MiB: fewer writes and
    thread hops per GiB); it gets them while the budget lasts, and 64 KiB ones beyond it. So
    however many uploads are under way, or stalled with a buffer half full, they hold the
    budget plus 128 KiB each, not two megabytes each.
    """

    def __init__(self, budget_bytes: int = RECEIVE_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.allocated_bytes = 0

    def take(self, wanted_bytes: int) -> int:
        """Grant a buffer of up to ``wanted_bytes``; its size is given back later."""
        granted = max(
            FIRST_BUFFER_BYTES, min(wanted_bytes, self.budget_bytes - self.allocated_bytes)
        )
        self.allocated_bytes += granted
        return granted

    def give_back(self, size: int) -> None:
        self.allocated_bytes -= size


@dataclass
class ReceivedFile:
    """One file of the request, stored under ``key`` but not catalogued yet."""

    key: str
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass
class ReceivedUpload:
    """Everything a multipart upload carried. Its files are stored as each part ends (so a
    request of a thousand parts holds one open file, not a thousand) and listed in a ledger
    that keeps the orphan sweeps away until they are catalogued, or deleted by ``discard``."""

    storage: Storage
    files: list[ReceivedFile] = field(default_factory=list)
    title: str | None = None
    visibility: str | None = None
    ledger: Ledger | None = None

    async def store(self, upload: UploadSink) -> None:
        """Commit one finished file's bytes, recording the key first."""
        if self.ledger is None:
            self.ledger = await self.storage.scratch.open_ledger()
        await self.ledger.add(upload.key)
        await upload.commit()

    async def catalogued(self) -> None:
        """The files have their rows: the ledger is no longer needed."""
        if self.ledger is not None:
            await self.ledger.close()
            self.ledger = None

    async def discard(self) -> None:
        """Leave nothing behind of any file of this upload."""
        with anyio.CancelScope(shield=True):
            for received in self.files:
                # A failed delete must not hide the original error: the bytes stay in the
                # ledger's keys until the process ends, then the orphan sweep takes them.
                with suppress(StreamportError, OSError):
                    await self.storage.delete(received.key)
            self.files.clear()
            await self.catalogued()


def upload_boundary(content_type: str | None) -> bytes:
    """The multipart boundary of a request, or the error that explains why there is none."""
    media_type, params = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        raise UnsupportedUpload()
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadUpload("The multipart body has no boundary.")
    if len(boundary) > _MAX_BOUNDARY_BYTES:
        raise BadUpload(f"The multipart boundary is longer than {_MAX_BOUNDARY_BYTES} bytes.")
    return boundary


def check_declared_length(content_length: str | None, max_upload_bytes: int) -> int | None:
    """The declared body length, if any; refused before reading a byte when it is already
    over the limit."""
    if content_length is None or not content_length.isdigit():
        return None
    if len(content_length) > 18 or int(content_length) > max_upload_bytes + FORM_OVERHEAD_BYTES:
        raise UploadTooLarge(max_upload_bytes)
    return int(content_length)


class _Part:
    """State of the part being parsed."""

    def __init__(self) -> None:
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.field_name: str | None = None
        self.text = bytearray()
        self.file: _FileWriter | None = None


class _FileWriter:
    """Copies part bytes into two buffers: while one is written and hashed (in threads), the
    parser fills the other. Buffers are allocated as bytes come (64 KiB, then larger up to
    1 MiB, then reused), and storage is opened only once a first buffer is full: an upload
    that stalls after its headers holds neither memory nor a file."""

    def __init__(self, storage: Storage, filename: str, budget: ReceiveBudget) -> None:
        self.storage = storage
        self.budget = budget
        self.upload: UploadSink | None = None
        self.filename = filename
        self.hasher = hashlib.sha256()
        self.size = 0
        self.head = b""
        self._buffers: list[bytearray | None] = [None, None]
        self._buffer_bytes = FIRST_BUFFER_BYTES
        self._active = 0
        self._filled = 0
        self._in_flight: asyncio.Future[None] | None = None

    async def feed(self, data: memoryview) -> None:
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self.size += len(data)
        while data:
            buffer = self._active_buffer()
            taken = min(len(data), len(buffer) - self._filled)
            buffer[self._filled : self._filled + taken] = data[:taken]
            self._filled += taken
            data = data[taken:]
            if self._filled == len(buffer):
                await self._hand_over()

    def _active_buffer(self) -> bytearray:
        buffer = self._buffers[self._active]
        # Only an empty buffer is swapped for a larger one (a full one is being written).
        if buffer is None or (self._filled == 0 and len(buffer) < self._buffer_bytes):
            if buffer is not None:
                self.budget.give_back(len(buffer))
            buffer = bytearray(self.budget.take(self._buffer_bytes))
            self._buffers[self._active] = buffer
        return buffer

    async def _hand_over(self) -> None:
        """Start writing the active buffer and switch to the other, once it is free."""
        await self._wait_in_flight()
        if self.upload is None:
            self.upload = await self.storage.open_upload()
        buffer = self._buffers[self._active]
        assert buffer is not None
        view = memoryview(buffer)[: self._filled]
        self._in_flight = asyncio.ensure_future(self._write_and_hash(self.upload, view))
        self._active ^= 1
        self._filled = 0
        self._buffer_bytes = min(WRITE_CHUNK_BYTES, self._buffer_bytes * 4)

    async def _write_and_hash(self, upload: UploadSink, view: memoryview) -> None:
        # hashlib releases the GIL on large buffers, so hashing in a thread overlaps the write.
        await asyncio.gather(upload.write(view), asyncio.to_thread(self.hasher.update, view))

    async def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight

    async def finish(self, received: ReceivedUpload) -> ReceivedFile:
        """Write what is left, store the file, and let its buffers go."""
        if self._filled:
            await self._hand_over()
        await self._wait_in_flight()
        self._release_buffers()
        if self.upload is None:  # an empty file: nothing was ever handed over
            self.upload = await self.storage.open_upload()
        assert self.upload is not None
        await received.store(self.upload)
        return ReceivedFile(
            key=self.upload.key,
            filename=self.filename,
            content_type=guess_content_type(self.filename, self.head),
            size=self.size,
            sha256=self.hasher.hexdigest(),
        )

    async def abandon(self) -> None:
        """Let a write in flight end (its thread cannot be stopped), then drop the file."""
        if self._in_flight is not None:
            with anyio.CancelScope(shield=True):
                await asyncio.gather(self._in_flight, return_exceptions=True)
            self._in_flight = None
        self._release_buffers()
        if self.upload is not None:
            await self.upload.discard()

    def _release_buffers(self) -> None:
        for buffer in self._buffers:
            if buffer is not None:
                self.budget.give_back(len(buffer))
        self._buffers = [None, None]


class _UploadReader:
    """Drives the push parser over the body and acts on its events in order."""

    def __init__(self, storage: Storage, max_upload_bytes: int, budget: ReceiveBudget) -> None:
        self.storage = storage
        self.budget = budget
        self.max_upload_bytes = max_upload_bytes
        self.events: list[tuple[str, Any]] = []
        self.result = ReceivedUpload(storage)
        self.part: _Part | None = None
        self.writer: _FileWriter | None = None  # the file part being received, if any
        self.file_bytes = 0
        self.parts = 0
        self.ended = False

    def callbacks(self) -> dict[str, Any]:
        events = self.events

        def data_event(name: str) -> Any:
            # A view, not a copy: file bytes are copied once, into the write buffer.
            return lambda data, start, end: events.append((name, memoryview(data)[start:end]))

        def plain_event(name: str) -> Any:
            return lambda: events.append((name, None))

        return {
            "on_part_begin": plain_event("part_begin"),
            "on_part_data": data_event("part_data"),
            "on_part_end": plain_event("part_end"),
            "on_header_field": data_event("header_field"),
            "on_header_value": data_event("header_value"),
            "on_header_end": plain_event("header_end"),
            "on_headers_finished": plain_event("headers_finished"),
            "on_end": plain_event("end"),
        }

    async def handle_events(self) -> None:
        for kind, payload in self.events:
            await getattr(self, f"_on_{kind}")(payload)
        self.events.clear()

    async def _on_part_begin(self, _: None) -> None:
        self.parts += 1
        if self.parts > _MAX_PARTS:
            raise UploadTooLarge(self.max_upload_bytes, f"more than {_MAX_PARTS} parts")
        self.part = _Part()

    async def _on_header_field(self, data: memoryview) -> None:
        assert self.part is not None
        self.part.header_name += data

    async def _on_header_value(self, data: memoryview) -> None:
        assert self.part is not None
        self.part.header_value += data

    async def _on_header_end(self, _: None) -> None:
        assert self.part is not None
        self.part.headers[bytes(self.part.header_name).lower()] = bytes(self.part.header_value)
        self.part.header_name.clear()
        self.part.header_value.clear()

    async def _on_headers_finished(self, _: None) -> None:
        part = self.part
        assert part is not None
        disposition, options = parse_options_header(part.headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise BadUpload("A part of the upload has no form-data name.")
        part.field_name = _decode(options[b"name"])
        if part.field_name != FILE_FIELD:
            return
        if b"filename" not in options:
            raise BadUpload(f"The field {FILE_FIELD!r} must carry a file, not text.")
        raw_name = _decode(options[b"filename"])
        if not raw_name:
            raise BadUpload("No file was chosen, or a file has an empty name.")
        filename = sanitize_filename(raw_name)
        if not filename:
            raise BadUpload(f"The file name {raw_name!r} has no usable characters.")
        if len(self.result.files) >= _MAX_FILES:
            raise BadUpload(f"At most {_MAX_FILES} files can be sent at once.")
        self.writer = part.file = _FileWriter(self.storage, filename, self.budget)

    async def _on_part_data(self, data: memoryview) -> None:
        part = self.part
        assert part is not None
        if part.file is not None:
            self.file_bytes += len(data)
            if self.file_bytes > self.max_upload_bytes:
                raise UploadTooLarge(self.max_upload_bytes)
            await part.file.feed(data)
            return
        # Fields other than these are not kept; all of them count as form overhead.
        if part.field_name in (TITLE_FIELD, VISIBILITY_FIELD):
            if len(part.text) + len(data) > _MAX_TITLE_FIELD_BYTES:
                raise BadUpload(f"The {part.field_name} field is too long.")
            part.text += data

    async def _on_part_end(self, _: None) -> None:
        part = self.part
        assert part is not None
        self.part = None
        if part.file is not None:
            received = await part.file.finish(self.result)
            self.writer = None
            self.result.files.append(received)
        elif part.field_name == TITLE_FIELD:
            self.result.title = _clean_title(_decode(bytes(part.text)))
        elif part.field_name == VISIBILITY_FIELD:
            self.result.visibility = _clean_visibility(_decode(bytes(part.text)))

    async def _on_end(self, _: None) -> None:
        self.ended = True

    async def discard(self) -> None:
        if self.writer is not None:
            await self.writer.abandon()
            self.writer = None
        await self.result.discard()


async def receive_upload(
    body: AsyncIterator[bytes],
    boundary: bytes,
    storage: Storage,
    max_upload_bytes: int,
    budget: ReceiveBudget | None = None,
) -> ReceivedUpload:
    """Read a multipart body into storage uploads; on any failure none is left behind.

    Raises ``BadUpload`` (malformed, no file), ``UploadTooLarge`` (file bytes past the limit,
    more than ``FORM_OVERHEAD_BYTES`` of anything else, too many parts), ``UploadAborted``
    (the client went away) or ``InsufficientStorage`` (disk full).
    """
    reader = _UploadReader(storage, max_upload_bytes, budget or ReceiveBudget())
    parser = MultipartParser(boundary, reader.callbacks(), max_header_size=_MAX_PART_HEADER_BYTES)
    body_bytes = 0
    try:
        async for chunk in body:
            if not chunk:
                continue
            body_bytes += len(chunk)
            parser.write(chunk)
            await reader.handle_events()
            if reader.ended:
                break
            # Every byte counts: the parser skips a preamble and keeps no unknown field, so
            # without this a body of nothing but those would be read to its end.
            if body_bytes - reader.file_bytes > FORM_OVERHEAD_BYTES:
                raise UploadTooLarge(max_upload_bytes, "more than 1 MiB besides the files")
        if not reader.ended:
            raise BadUpload("The upload ended before its final boundary.")
        if not reader.result.files:
            raise BadUpload(f"No file was sent in the field {FILE_FIELD!r}.")
    except MultipartParseError as exc:
        await reader.discard()
        raise BadUpload(f"The multipart body is malformed: {exc}") from exc
    except ClientDisconnect as exc:
        await reader.discard()
        raise UploadAborted() from exc
    except BaseException:
        # Also on cancellation: the uploads must not outlive the request.
        await reader.discard()
        raise
    return reader.result


def _decode(value: bytes) -> str:
    # Browsers send raw UTF-8 in part headers (RFC 7578 §4.2); parse_options_header hands the
    # bytes back as latin-1, which round-trips losslessly.
    return value.decode("utf-8", errors="replace")


def _clean_visibility(raw: str) -> str | None:
    visibility = raw.strip()
    if not visibility:
        return None
    if visibility not in VISIBILITIES:
        raise BadUpload("visibility must be one of public, unlisted, private.")
    return visibility


def _clean_title(raw: str) -> str | None:
    title = normalize_title(raw)
    if len(title) > TITLE_MAX_CHARS:
        raise BadUpload(f"The title is longer than {TITLE_MAX_CHARS} characters.")
    return title or None
