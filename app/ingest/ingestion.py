"""Bytes in, catalog rows out, all or nothing: used by the upload form, the API and ``scan``.

Order matters for crash safety: bytes are committed to storage first (fsynced and renamed, or
the multipart upload completed), then the rows are committed in one short transaction, so a row
never points at missing or partial bytes. If anything fails, the bytes already committed are
removed again.
"""

import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import NamedTuple

import aiofiles
import aiofiles.os
import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app import catalog
from app.catalog.models import TITLE_MAX_CHARS, Media
from app.ingest.content_types import SNIFF_BYTES, guess_content_type
from app.ingest.filenames import sanitize_filename, title_from_filename
from app.ingest.uploads import (
    ReceiveBudget,
    ReceivedFile,
    ReceivedUpload,
    check_declared_length,
    receive_upload,
    upload_boundary,
)
from app.storage import Storage
from app.storage.reading import open_for_reading

READ_CHUNK_BYTES = 1024 * 1024
# Files added by ``streamport scan`` share one place in the processing queue.
SCAN_QUEUE_KEY = "scan"


async def ingest_upload(
    session: AsyncSession,
    storage: Storage,
    body: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    max_upload_bytes: int,
    queue_key: str | None = None,
    budget: ReceiveBudget | None = None,
    owner_id: int | None = None,
    default_visibility: str = "private",
) -> list[Media]:
    """Store every file of a multipart request body and commit their rows, in upload order.

    Their processing jobs share ``queue_key`` (by default one of their own): one request's
    thousand files take turns with everyone else's, not the whole queue.
    """
    boundary = upload_boundary(content_type)
    declared = check_declared_length(content_length, max_upload_bytes)
    if declared is not None:
        # 507 before reading a byte when the upload would eat into the disk's reserve.
        storage.check_room(declared)
    received = await receive_upload(body, boundary, storage, max_upload_bytes, budget)
    owner = _Owner(owner_id, received.visibility or default_visibility)
    return await _catalogue(session, received, queue_key or new_queue_key(), owner)


def new_queue_key() -> str:
    """A queue key of its own, for one request."""
    return f"request:{secrets.token_hex(8)}"


def upload_titles(title: str | None, filenames: Sequence[str]) -> list[str]:
    """Titles for the files of one upload: the given title names a single file; with several
    files it becomes a common prefix, so their titles stay distinct."""
    if not title:
        return [title_from_filename(name) for name in filenames]
    if len(filenames) == 1:
        return [title]
    return [f"{title} — {title_from_filename(name)}"[:TITLE_MAX_CHARS] for name in filenames]


class _Owner(NamedTuple):
    user_id: int | None
    visibility: str


async def _catalogue(
    session: AsyncSession, received: ReceivedUpload, queue_key: str, owner: _Owner | None
) -> list[Media]:
    """Insert the rows of stored files in one transaction; on failure, delete the files."""
    try:
        if owner is None:
            # Scanned files belong to the first admin (or whoever becomes it), private.
            owner = _Owner(await catalog.first_admin_id(session), "private")
        titles = upload_titles(received.title, [item.filename for item in received.files])
        first_rank = await catalog.next_fair_rank(session, queue_key)
        media = [
            await catalog.add_media(
                session,
                title=title,
                filename=item.filename,
                content_type=item.content_type,
                size=item.size,
                sha256=item.sha256,
                storage_key=item.key,
                queue_key=queue_key,
                fair_rank=first_rank + index,
                owner_id=owner.user_id,
                visibility=owner.visibility,
            )
            for index, (item, title) in enumerate(zip(received.files, titles, strict=True))
        ]
        await session.commit()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await session.rollback()
            await received.discard()
        raise
    await received.catalogued()
    return media


async def ingest_path(session: AsyncSession, storage: Storage, path: Path) -> Media | None:
    """Copy a file already on disk into storage and the catalog; ``None`` if its bytes are
    already catalogued."""
    hasher = hashlib.sha256()
    head = b""
    size = 0
    upload = await storage.open_upload(size_hint=(await aiofiles.os.stat(path)).st_size)
    try:
        async with open_for_reading(path) as source:
            while chunk := await source.read(READ_CHUNK_BYTES):
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                hasher.update(chunk)
                size += len(chunk)
                await upload.write(chunk)
        sha256 = hasher.hexdigest()
        if await catalog.find_by_sha256(session, sha256) is not None:
            await upload.discard()
            return None
        filename = sanitize_filename(path.name) or "unnamed"
        received = ReceivedUpload(storage)
        await received.store(upload)
    except BaseException:
        await upload.discard()
        raise
    received.files.append(
        ReceivedFile(
            key=upload.key,
            filename=filename,
            content_type=guess_content_type(filename, head),
            size=size,
            sha256=sha256,
        )
    )
    [media] = await _catalogue(session, received, SCAN_QUEUE_KEY, None)
    return media
