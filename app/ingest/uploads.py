"""Multipart request body → storage uploads, hashed and counted while they are written.

The body is parsed as it arrives with python-multipart's push parser; file bytes go straight
into storage uploads (a partial file, or an S3 multipart upload) in large writes, and nothing
is committed here: the caller commits the uploads once the whole request has been read (see
``app.ingest``).
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from app.catalog.models import TITLE_MAX_CHARS
from app.errors import BadUpload, UnsupportedUpload, UploadAborted, UploadTooLarge
from app.ingest.content_types import SNIFF_BYTES, guess_content_type
from app.ingest.filenames import normalize_title, sanitize_filename
from app.storage import Storage, UploadSink

FILE_FIELD = "file"
TITLE_FIELD = "title"
WRITE_CHUNK_BYTES = 1024 * 1024
# Room for boundaries, part headers and small fields on top of the file bytes themselves.
FORM_OVERHEAD_BYTES = 1024 * 1024
_MAX_TEXT_FIELD_BYTES = 64 * 1024
_MAX_FILES = 1000
# Part headers carry the file name; long enough for any real one (and for a hostile 5,000
# characters, which is then cut down), bounded so headers cannot eat memory.
_MAX_PART_HEADER_BYTES = 64 * 1024


@dataclass
class ReceivedFile:
    """One file of the request, all sent to storage but not committed yet."""

    upload: UploadSink
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass
class ReceivedUpload:
    """Everything a multipart upload carried."""

    files: list[ReceivedFile] = field(default_factory=list)
    title: str | None = None

    async def discard(self) -> None:
        """Leave nothing behind of any file of this upload."""
        for received in self.files:
            await received.upload.discard()


def upload_boundary(content_type: str | None) -> bytes:
    """The multipart boundary of a request, or the error that explains why there is none."""
    media_type, params = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        raise UnsupportedUpload()
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadUpload("The multipart body has no boundary.")
    return boundary


def check_declared_length(content_length: str | None, max_upload_bytes: int) -> None:
    """Refuse before reading a byte when the declared body is already over the limit."""
    if content_length is None or not content_length.isdigit():
        return
    if int(content_length) > max_upload_bytes + FORM_OVERHEAD_BYTES:
        raise UploadTooLarge(max_upload_bytes)


class _Part:
    """State of the part being parsed."""

    def __init__(self) -> None:
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.field_name: str | None = None
        self.filename: str | None = None
        self.text = bytearray()
        self.file: _FileWriter | None = None


class _FileWriter:
    """Copies part bytes into two reused buffers: while one is written and hashed (in
    threads), the parser fills the other. Reusing them keeps memory flat and spares the
    allocator a fresh megabyte per write."""

    def __init__(self, upload: UploadSink, filename: str) -> None:
        self.upload = upload
        self.filename = filename
        self.hasher = hashlib.sha256()
        self.size = 0
        self.head = b""
        self._buffers = (bytearray(WRITE_CHUNK_BYTES), bytearray(WRITE_CHUNK_BYTES))
        self._active = 0
        self._filled = 0
        self._in_flight: asyncio.Future[None] | None = None

    async def feed(self, data: memoryview) -> None:
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self.size += len(data)
        while data:
            buffer = self._buffers[self._active]
            taken = min(len(data), len(buffer) - self._filled)
            buffer[self._filled : self._filled + taken] = data[:taken]
            self._filled += taken
            data = data[taken:]
            if self._filled == len(buffer):
                await self._hand_over()

    async def _hand_over(self) -> None:
        """Start writing the active buffer and switch to the other, once it is free."""
        await self._wait_in_flight()
        view = memoryview(self._buffers[self._active])[: self._filled]
        self._in_flight = asyncio.ensure_future(self._write_and_hash(view))
        self._active ^= 1
        self._filled = 0

    async def _write_and_hash(self, view: memoryview) -> None:
        # hashlib releases the GIL on large buffers, so hashing in a thread overlaps the write.
        await asyncio.gather(self.upload.write(view), asyncio.to_thread(self.hasher.update, view))

    async def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight

    async def finish(self) -> ReceivedFile:
        if self._filled:
            await self._hand_over()
        await self._wait_in_flight()
        # Not committed here: a later file of the request may still fail it.
        return ReceivedFile(
            upload=self.upload,
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
        await self.upload.discard()


class _UploadReader:
    """Drives the push parser over the body and acts on its events in order."""

    def __init__(self, storage: Storage, max_upload_bytes: int) -> None:
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes
        self.events: list[tuple[str, Any]] = []
        self.result = ReceivedUpload()
        self.part: _Part | None = None
        self.open_writers: list[_FileWriter] = []
        self.file_bytes = 0
        self.text_bytes = 0
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
        if len(self.result.files) + len(self.open_writers) >= _MAX_FILES:
            raise BadUpload(f"At most {_MAX_FILES} files can be sent at once.")
        writer = _FileWriter(await self.storage.open_upload(), filename)
        self.open_writers.append(writer)
        part.file = writer

    async def _on_part_data(self, data: memoryview) -> None:
        part = self.part
        assert part is not None
        if part.file is not None:
            self.file_bytes += len(data)
            if self.file_bytes > self.max_upload_bytes:
                raise UploadTooLarge(self.max_upload_bytes)
            await part.file.feed(data)
            return
        self.text_bytes += len(data)
        if self.text_bytes > _MAX_TEXT_FIELD_BYTES:
            raise BadUpload("The form's text fields are too long.")
        part.text += data

    async def _on_part_end(self, _: None) -> None:
        part = self.part
        assert part is not None
        self.part = None
        if part.file is not None:
            received = await part.file.finish()
            self.open_writers.remove(part.file)
            self.result.files.append(received)
        elif part.field_name == TITLE_FIELD:
            self.result.title = _clean_title(_decode(bytes(part.text)))

    async def _on_end(self, _: None) -> None:
        self.ended = True

    async def discard(self) -> None:
        for writer in self.open_writers:
            await writer.abandon()
        self.open_writers.clear()
        await self.result.discard()


async def receive_upload(
    body: AsyncIterator[bytes], boundary: bytes, storage: Storage, max_upload_bytes: int
) -> ReceivedUpload:
    """Read a multipart body into storage uploads; on any failure none is left behind.

    Raises ``BadUpload`` (malformed, no file), ``UploadTooLarge`` (file bytes past the limit),
    ``UploadAborted`` (the client went away) or ``InsufficientStorage`` (disk full).
    """
    reader = _UploadReader(storage, max_upload_bytes)
    parser = MultipartParser(boundary, reader.callbacks(), max_header_size=_MAX_PART_HEADER_BYTES)
    try:
        async for chunk in body:
            if not chunk:
                continue
            parser.write(chunk)
            await reader.handle_events()
            if reader.ended:
                break
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


def _clean_title(raw: str) -> str | None:
    title = normalize_title(raw)
    if len(title) > TITLE_MAX_CHARS:
        raise BadUpload(f"The title is longer than {TITLE_MAX_CHARS} characters.")
    return title or None
