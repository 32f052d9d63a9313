"""Stored bytes as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2).

Uploads stream into multipart uploads, two parts in flight while the next fills on local
disk; reads are ranged ``GetObject`` calls streamed within the response's lifetime. The locked
scratch file a part fills in is named for its upload's key, so a server killed mid-upload
aborts its leftovers at the next start, as local partial files are swept. (Uploads of a node
that never comes back are left to the bucket's lifecycle rule ``AbortIncompleteMultipartUpload``;
see README's deployment section. Start times of uploads are not to be trusted for this: not every
S3-compatible server reports them.)
"""

import asyncio
import io
import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from app.config import Settings
from app.errors import StorageUnavailable
from app.storage.base import CatalogKeys, ObjectInfo, Span, StoredObject
from app.storage.free_space import FreeSpace
from app.storage.keys import check_key, is_key, key_of_token, key_token, new_key
from app.storage.reading import open_for_reading
from app.storage.scratch import PartialFile, ScratchDir

logger = logging.getLogger("streamport")

MIN_PART_BYTES = 8 * 2**20
PARTS_IN_FLIGHT = 2
# Parts being sent by all uploads of one process together: past this, uploads wait (and so
# do their clients, through TCP), so memory grows by one filling part per upload, no more.
PROCESS_PARTS_IN_FLIGHT = 8
_MAX_PARTS = 10_000
# The spool of an S3 upload in progress, named for its key.
_SPOOL_SUFFIX = ".s3upload"
_COPY_CHUNK_BYTES = 2**20
# An object with no row must be older than this, and still have no row ten minutes after it
# was listed, to go: Last-Modified of a multipart object may be when its upload began, and
# the files of a multi-file upload are stored one by one but catalogued together when the
# request ends; another node cannot see this node's ledgers of such requests. Orphans only
# come from crashes, so a day's delay costs nothing.
ORPHAN_MIN_AGE_SECONDS = 24 * 3600
ORPHAN_RECHECK_SECONDS = 600
_MISSING = {"NoSuchKey", "404", "NotFound"}


def part_bytes_for(total_bytes: int) -> int:
    """A part size of 8 MiB or more, whole MiB, so ``total_bytes`` fits in 10,000 parts."""
    needed = math.ceil(total_bytes / _MAX_PARTS)
    return max(MIN_PART_BYTES, math.ceil(needed / 2**20) * 2**20)


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class S3Upload:
    """New bytes streamed into S3: one ``PutObject`` if they fit in a part, otherwise a
    multipart upload with up to two parts in flight while the next one fills.

    The part being filled goes to a locked scratch file on local disk, not to memory: a
    thousand uploads in progress hold a thousand files, not a thousand parts' worth of RAM.
    Only parts being sent are in memory, at most ``PROCESS_PARTS_IN_FLIGHT`` per process.
    The file is named for the key, so a restarted server knows which upload to abort.
    """

    def __init__(self, storage: "S3Storage", spool: PartialFile, key: str, part_bytes: int) -> None:
        self.key = key
        self._storage = storage
        self._spool = spool
        self.part_bytes = part_bytes
        self._filled = 0  # bytes of the current part in the spool file
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._in_flight: list[asyncio.Future[None]] = []
        self._created = False
        self._committed = False

    @property
    def _name(self) -> str:
        return self._storage.object_name(self.key)

    async def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            taken = min(len(view), self.part_bytes - self._filled)
            # The spool is on local disk: never into the disk's reserve.
            self._storage.free_space.consume(taken)
            await self._spool.write(view[:taken])
            self._filled += taken
            view = view[taken:]
            if self._filled == self.part_bytes:
                await self._send_part()

    async def _take_part(self) -> io.BytesIO:
        """The spooled part, read back for sending; the spool starts afresh."""
        body = _payload(await self._spool.read_all())
        await self._spool.rewind()
        self._filled = 0
        return body

    async def _send_part(self) -> None:
        # Two parts in flight keep the link busy while the store digests a part; a third
        # waits, and so does every upload past the process's budget of parts in flight.
        while len(self._in_flight) >= PARTS_IN_FLIGHT:
            await self._in_flight.pop(0)
        await self._storage.parts_in_flight.acquire()
        try:
            await self._start_part()
        except BaseException:
            self._storage.parts_in_flight.release()
            raise

    async def _start_part(self) -> None:
        client = self._storage.client
        if self._upload_id is None:
            # Cancelled while S3 creates it, the upload would exist without its id: discard
            # then looks it up by name.
            self._created = True
            created = await _call(
                client.create_multipart_upload(Bucket=self._storage.bucket, Key=self._name)
            )
            self._upload_id = created["UploadId"]
        body = await self._take_part()
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number})
        task = asyncio.ensure_future(self._upload_part(number, body))
        # Released when the task ends however it ends, even cancelled before it ever ran.
        task.add_done_callback(lambda _: self._storage.parts_in_flight.release())
        self._in_flight.append(task)

    async def _upload_part(self, number: int, body: io.BytesIO) -> None:
        answer = await _call(
            self._storage.client.upload_part(
                Bucket=self._storage.bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        )
        self._parts[number - 1]["ETag"] = answer["ETag"]

    async def _wait_in_flight(self) -> None:
        while self._in_flight:
            await self._in_flight.pop(0)

    async def commit(self) -> None:
        try:
            client, bucket = self._storage.client, self._storage.bucket
            if self._upload_id is None:
                body = await self._take_part()
                await _call(client.put_object(Bucket=bucket, Key=self._name, Body=body))
            else:
                if self._filled:
                    await self._send_part()
                await self._wait_in_flight()
                await _call(
                    client.complete_multipart_upload(
                        Bucket=bucket,
                        Key=self._name,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
                )
                self._upload_id = None
        except BaseException:
            await self.discard()
            raise
        self._committed = True
        await self._spool.discard()

    async def discard(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._in_flight:
                # A part being sent cannot be unsent: let it end, then abort the whole upload.
                await asyncio.gather(*self._in_flight, return_exceptions=True)
                self._in_flight.clear()
            if self._created and not self._committed:
                try:
                    if self._upload_id is not None:
                        await self._storage.abort_upload(self._name, self._upload_id)
                    else:
                        await self._storage.abort_uploads_of(self._name)
                except (ClientError, BotoCoreError, StorageUnavailable, aiohttp.ClientError) as exc:
                    # The spool stays, unlocked, when this process ends: the next start
                    # aborts the upload its name tells.
                    logger.warning("could not abort multipart upload of %s: %s", self.key, exc)
                    await self._spool.close()
                    return
                self._created = False
                self._upload_id = None
            await self._spool.discard()


def _payload(buffer: bytes) -> io.BytesIO:
    # A file-like body: aiohttp sends it in pieces (a large bytes body would be written in
    # one go), and botocore can rewind it to retry or to hash it for the signature.
    return io.BytesIO(buffer)


class _ObjectSpan:
    def __init__(self, body: Any) -> None:
        self._body = body

    async def read(self, max_bytes: int) -> bytes:
        return await _call(self._body.read(max_bytes))

    async def aclose(self) -> None:
        # Closes the connection under a body not read to its end, so S3 stops sending.
        self._body.close()


class _ObjectReader:
    def __init__(self, storage: "S3Storage", key: str) -> None:
        self._storage = storage
        self._key = key

    async def stream(self, span: Span) -> _ObjectSpan:
        return _ObjectSpan(await self._storage.get_range(self._key, span))


class _ObjectSource:
    def __init__(self, storage: "S3Storage", key: str) -> None:
        self._storage = storage
        self._key = key

    async def read_spans(self, spans: Sequence[Span]) -> list[bytes]:
        pieces = []
        for span in spans:
            body = await self._storage.get_range(self._key, span)
            try:
                data = await _call(body.read())
            finally:
                body.close()
            if len(data) != span.length:
                raise RuntimeError("a stored object is shorter than its catalog size")
            pieces.append(data)
        return pieces

    @asynccontextmanager
    async def open(self) -> AsyncIterator[_ObjectReader]:
        yield _ObjectReader(self._storage, self._key)


class S3Storage:
    """Stored bytes as objects named ``<prefix><key>`` in one bucket."""

    def __init__(self, settings: Settings) -> None:
        if not settings.s3_bucket:
            raise ValueError("STREAMPORT_S3_BUCKET is required with STREAMPORT_STORAGE=s3")
        self.bucket = settings.s3_bucket
        prefix = settings.s3_prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = settings.s3_endpoint_url
        self.region = settings.s3_region
        self.upload_part_bytes = part_bytes_for(settings.max_upload_bytes)
        self.scratch = ScratchDir(settings.media_dir / ".partial")
        self.free_space = FreeSpace(settings.media_dir, settings.min_free_bytes)
        self._exit_stack = AsyncExitStack()
        self._client: Any = None
        self._background: set[asyncio.Task[None]] = set()
        self.parts_in_flight = asyncio.Semaphore(PROCESS_PARTS_IN_FLIGHT)

    @property
    def client(self) -> Any:
        """The aiobotocore S3 client (after ``prepare``)."""
        if self._client is None:
            raise RuntimeError("S3Storage.prepare() has not run")
        return self._client

    def object_name(self, key: str) -> str:
        """The object name of a storage key."""
        return self.prefix + check_key(key)

    async def prepare(self) -> None:
        await anyio.to_thread.run_sync(self.scratch.prepare)
        config = AioConfig(
            max_pool_connections=64,
            connect_timeout=10,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 5},
            # Path-style URLs work with every S3-compatible server; virtual hosts need DNS.
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            # Checksums only where S3 requires them: the sha256 of every upload is computed
            # on the way in anyway, and CRC-ing every part again would cost CPU per byte.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = get_session()
        self._client = await self._exit_stack.enter_async_context(
            session.create_client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
            )
        )
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            await self.close()
            raise StorageUnavailable(
                f"The bucket {self.bucket!r} at {self.endpoint_url or 'AWS'} cannot be used: {exc}"
            ) from exc

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        self._background.clear()
        await self._exit_stack.aclose()
        self._client = None

    def check_room(self, incoming_bytes: int) -> None:
        # The bytes go to the bucket; locally only one part at a time is spooled, and that is
        # checked against the reserve as it is written.
        pass

    async def open_upload(self, size_hint: int | None = None) -> S3Upload:
        part_bytes = part_bytes_for(size_hint) if size_hint else self.upload_part_bytes
        key = new_key()
        spool = await self.scratch.open_partial(_SPOOL_SUFFIX, token=key_token(key))
        return S3Upload(self, spool, key, part_bytes)

    async def store_scratch(self, partial: PartialFile) -> str:
        try:
            size = (await anyio.Path(partial.path).stat()).st_size
            upload = await self.open_upload(size)
            try:
                async with open_for_reading(partial.path) as source:
                    while chunk := await source.read(upload.part_bytes):
                        await upload.write(chunk)
                await upload.commit()
            except BaseException:
                await upload.discard()
                raise
            return upload.key
        finally:
            await partial.discard()

    def source(self, key: str) -> _ObjectSource:
        return _ObjectSource(self, check_key(key))

    async def get_range(self, key: str, span: Span | None) -> Any:
        """The open body of one (ranged) ``GetObject``; the caller closes it."""
        ranged = {"Range": f"bytes={span.start}-{span.end}"} if span else {}
        answer = await _call_for(
            key, self.client.get_object(Bucket=self.bucket, Key=self.object_name(key), **ranged)
        )
        return answer["Body"]

    @asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        partial = await self.scratch.open_partial()
        try:
            body = await self.get_range(key, None)
            try:
                while chunk := await _call(body.read(_COPY_CHUNK_BYTES)):
                    # Never into the disk's reserve, however large the object.
                    self.free_space.consume(len(chunk))
                    await partial.write(chunk)
            finally:
                body.close()
            # Kept open (and locked) while tools read it: a start-up sweep of another worker
            # removes unlocked scratch files.
            yield partial.path
        finally:
            await partial.discard()

    async def info(self, key: str) -> ObjectInfo:
        head = await _call_for(
            key, self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
        )
        return ObjectInfo(head["ContentLength"], head["LastModified"])

    async def delete(self, key: str) -> None:
        await _call(self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key)))

    async def listing(self) -> AsyncIterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            async for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    if is_key(key):
                        yield StoredObject(key, item["Size"], item["LastModified"])
        except (ClientError, BotoCoreError, aiohttp.ClientError) as exc:
            raise _unavailable(exc) from exc

    async def abort_upload(self, name: str, upload_id: str) -> None:
        """Abort one multipart upload, dropping its parts; already gone is fine."""
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise

    async def abort_uploads_of(self, name: str) -> int:
        """Abort every multipart upload of the object ``name``; returns how many."""
        aborted = 0
        for upload in await self.uploads_in_flight(name):
            if upload["Key"] == name:
                await self.abort_upload(name, upload["UploadId"])
                aborted += 1
        return aborted

    async def uploads_in_flight(self, prefix: str) -> list[dict[str, Any]]:
        """Every multipart upload under ``prefix`` that is neither completed nor aborted."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        found = []
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(page.get("Uploads", []))
        return found

    async def sweep(self, catalog_keys: CatalogKeys) -> None:
        partials = await anyio.to_thread.run_sync(self.scratch.sweep_partials)
        if partials:
            logger.info("Removed %d scratch file(s) left by an interrupted server", len(partials))
        aborted = await self._abort_abandoned_uploads()
        if aborted:
            logger.info("Aborted %d multipart upload(s) left by an interrupted server", aborted)
        try:
            candidates = await self._orphan_candidates(await self._known_keys(catalog_keys))
        except (ClientError, BotoCoreError, aiohttp.ClientError) as exc:
            logger.warning("could not list the bucket for orphaned objects: %s", exc)
            return
        if candidates:
            task = asyncio.ensure_future(self._delete_orphans(candidates, catalog_keys))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _abort_abandoned_uploads(self) -> int:
        aborted = 0
        abandoned = await anyio.to_thread.run_sync(
            lambda: list(self.scratch.abandoned(_SPOOL_SUFFIX))
        )
        for path in abandoned:
            key = key_of_token(path.name.removesuffix(_SPOOL_SUFFIX))
            if key is not None:
                try:
                    aborted += await self.abort_uploads_of(self.object_name(key))
                except (ClientError, BotoCoreError, aiohttp.ClientError) as exc:
                    # Left for the next start (or the bucket's lifecycle rule).
                    logger.warning("could not abort the upload of %s: %s", key, exc)
                    continue
            path.unlink(missing_ok=True)
        return aborted

    async def _known_keys(self, catalog_keys: CatalogKeys) -> set[str]:
        """Keys with a row, and keys this machine's requests stored but have not catalogued."""
        return await catalog_keys() | await anyio.to_thread.run_sync(self.scratch.held_keys)

    async def _orphan_candidates(self, known: set[str]) -> list[str]:
        cutoff = datetime.now(UTC) - timedelta(seconds=ORPHAN_MIN_AGE_SECONDS)
        return [
            stored.key
            async for stored in self.listing()
            if stored.key not in known and stored.modified_at < cutoff
        ]

    async def _delete_orphans(self, candidates: list[str], catalog_keys: CatalogKeys) -> None:
        await asyncio.sleep(ORPHAN_RECHECK_SECONDS)
        try:
            known = await self._known_keys(catalog_keys)
            orphans = [key for key in candidates if key not in known]
            for key in orphans:
                await self.delete(key)
        except Exception:  # a background clean-up: the next start tries again
            logger.exception("removing orphaned objects failed")
            return
        if orphans:
            logger.info("Removed %d stored object(s) that no catalog row points at", len(orphans))


async def _call(awaitable: Any) -> Any:
    """Await an S3 call; failures of the service become ``StorageUnavailable``."""
    try:
        return await awaitable
    except (ClientError, BotoCoreError, aiohttp.ClientError) as exc:
        # aiohttp's errors cover a body cut off mid-read, which botocore does not wrap.
        raise _unavailable(exc) from exc


async def _call_for(key: str, awaitable: Any) -> Any:
    """Like ``_call``, for a call about one key: its absence becomes ``FileNotFoundError``."""
    try:
        return await awaitable
    except ClientError as exc:
        if _is_missing(exc):
            raise FileNotFoundError(key) from exc
        raise _unavailable(exc) from exc
    except (BotoCoreError, aiohttp.ClientError) as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: Exception) -> StorageUnavailable:
    logger.error("S3 request failed: %s", exc)
    return StorageUnavailable()
