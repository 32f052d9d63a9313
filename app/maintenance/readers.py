"""Read-only access for a verification: catalog rows a page at a time, each in a short session
of its own, and stored objects read through once and hashed. Nothing here writes or judges;
when the catalog itself is out of reach, ``VerifyAborted`` says so."""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.db import create_engine, create_sessionmaker
from app.catalog.models import Media, Rendition
from app.errors import StreamportError
from app.maintenance.findings import Expected, Reading, worth_reading
from app.storage import ByteSource, Span, SpanStream, Storage
from app.storage.keys import is_key

ROWS_PER_PAGE = 500

ORIGINAL = "original"
# The catalog columns naming each stored object of a media.
ROLE_COLUMNS = {
    ORIGINAL: Media.storage_key,
    "poster": Media.poster_key,
    "thumbnail": Media.thumbnail_key,
    "playback": Media.playback_key,
}
# HLS renditions: a table of their own, any number per media.
RENDITION = "rendition"


class VerifyAborted(Exception):
    """Verification cannot go on: the catalog or storage is out of reach."""


# --------------------------------------------------------------------------- catalog


def expectations(row: Sequence[Any]) -> list[Expected]:
    """The objects one catalog row names: ``(id, size, sha256, storage_key, poster_key,
    thumbnail_key, playback_key, rendition_keys)``."""
    media_id, size, sha256, *keys, rendition_keys = row
    found = []
    for role, key in zip(ROLE_COLUMNS, keys, strict=True):
        if key is None:
            continue
        if role == ORIGINAL:
            found.append(Expected(media_id, role, key, size, sha256.lower()))
        else:
            found.append(Expected(media_id, role, key))
    return found + [Expected(media_id, RENDITION, key) for key in rendition_keys]


class CatalogReader:
    """Read-only questions to the catalog, each in a short session of its own."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # Connecting would create an empty catalog, which would then verify as "all well".
            if not Path(url.database).exists():
                raise VerifyAborted(
                    f"no catalog at {url.database} "
                    "(are STREAMPORT_MEDIA_DIR and STREAMPORT_DATABASE_URL right?)"
                )
        self._where = url.render_as_string(hide_password=True)
        self._engine = create_engine(database_url)
        self._sessions = create_sessionmaker(self._engine)

    async def close(self) -> None:
        await self._engine.dispose()

    def _failed(self, exc: Exception) -> VerifyAborted:
        return VerifyAborted(f"cannot read the catalog at {self._where}: {_first_line(exc)}")

    async def totals(self) -> tuple[int, int]:
        """How many media, and the bytes of their originals (for progress)."""
        query = select(func.count(), func.coalesce(func.sum(Media.size), 0))
        try:
            async with self._sessions() as session:
                count, size = (await session.execute(query.select_from(Media))).one()
        except (SQLAlchemyError, OSError) as exc:
            raise self._failed(exc) from exc
        return int(count), int(size)

    async def pages(self) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Every row's id, size, digest and keys (its renditions' last), in id order, a page
        per session: no transaction stays open while bytes are read, and memory holds one
        page."""
        columns = (Media.id, Media.size, Media.sha256, *ROLE_COLUMNS.values())
        after: str | None = None
        while True:
            query = select(*columns).order_by(Media.id).limit(ROWS_PER_PAGE)
            if after is not None:
                query = query.where(Media.id > after)
            try:
                async with self._sessions() as session:
                    rows = list((await session.execute(query)).all())
                    renditions = await _rendition_keys(session, [row[0] for row in rows])
            except (SQLAlchemyError, OSError) as exc:
                raise self._failed(exc) from exc
            if not rows:
                return
            yield [(*row, renditions.get(row[0], ())) for row in rows]
            after = rows[-1][0]

    async def still_names(self, expected: Expected) -> bool:
        """Whether the media still exists and names the same key in the same role."""
        if expected.role == RENDITION:
            query = select(Rendition.id).where(
                Rendition.media_id == expected.media_id, Rendition.storage_key == expected.key
            )
        else:
            query = select(Media.id).where(
                Media.id == expected.media_id, ROLE_COLUMNS[expected.role] == expected.key
            )
        try:
            async with self._sessions() as session:
                return (await session.execute(query)).first() is not None
        except (SQLAlchemyError, OSError) as exc:
            raise self._failed(exc) from exc

    async def named(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` some row names now."""
        wanted = set(keys)
        columns = list(ROLE_COLUMNS.values())
        query = select(*columns).where(or_(*(column.in_(keys) for column in columns)))
        renditions = select(Rendition.storage_key).where(Rendition.storage_key.in_(keys))
        try:
            async with self._sessions() as session:
                rows = (await session.execute(query)).all()
                rendition_keys = set(await session.scalars(renditions))
        except (SQLAlchemyError, OSError) as exc:
            raise self._failed(exc) from exc
        return {key for row in rows for key in row if key in wanted} | rendition_keys


async def _rendition_keys(session: AsyncSession, media_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if not media_ids:
        return found
    rows = await session.execute(
        select(Rendition.media_id, Rendition.storage_key).where(Rendition.media_id.in_(media_ids))
    )
    for media_id, key in rows:
        found.setdefault(media_id, []).append(key)
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# --------------------------------------------------------------------------- bytes


def failure_reason(exc: Exception) -> str:
    """Why a storage operation failed, in one line fit for a report."""
    if isinstance(exc, StreamportError):
        return exc.detail
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _first_line(exc)


async def _next_chunk(stream: SpanStream, chunk_bytes: int) -> list[bytes]:
    """Up to ``chunk_bytes`` of the stream, gathered from as many reads as it takes (an S3
    body hands over what the socket has, often far less); empty at the end."""
    pieces: list[bytes] = []
    count = 0
    while count < chunk_bytes:
        data = await stream.read(chunk_bytes - count)
        if not data:
            break
        pieces.append(data)
        count += len(data)
    return pieces


def _update(hasher: "hashlib._Hash", pieces: list[bytes]) -> None:
    for piece in pieces:
        hasher.update(piece)


async def read_through(
    source: ByteSource,
    size: int,
    chunk_bytes: int,
    hasher: "hashlib._Hash | None",
    on_bytes: Callable[[int], None],
) -> int:
    """Read all ``size`` bytes once, feeding ``hasher``; returns how many came.

    Each chunk is hashed in a worker thread while the next one is read, so one large file
    keeps both the disk and a core busy; at most two chunks are held at a time.
    """
    if size == 0:
        return 0  # a Span cannot be empty
    count = 0
    async with source.open() as reader:
        stream = await reader.stream(Span(0, size - 1))
        hashing: asyncio.Future[None] | None = None
        try:
            while True:
                pieces = await _next_chunk(stream, chunk_bytes)
                if hashing is not None:
                    await hashing
                    hashing = None
                if not pieces:
                    return count
                read = sum(len(piece) for piece in pieces)
                count += read
                on_bytes(read)
                if hasher is not None:
                    hashing = asyncio.ensure_future(
                        anyio.to_thread.run_sync(_update, hasher, pieces)
                    )
        finally:
            with anyio.CancelScope(shield=True):
                if hashing is not None:
                    await asyncio.gather(hashing, return_exceptions=True)
                await stream.aclose()


async def inspect(
    storage: Storage, expected: Expected, chunk_bytes: int, on_bytes: Callable[[int], None]
) -> Reading:
    """Look for one object and read it through."""
    if not is_key(expected.key):
        return Reading(found=False, error=f"the catalog names {expected.key!r}, not a key")
    try:
        stored = await storage.info(expected.key)
    except FileNotFoundError:
        return Reading(found=False)
    except (OSError, StreamportError) as exc:
        return Reading(found=True, error=failure_reason(exc))
    if not worth_reading(expected, stored.size):
        return Reading(found=True, size=stored.size)
    hasher = hashlib.sha256() if expected.sha256 is not None else None
    try:
        count = await read_through(
            storage.source(expected.key), stored.size, chunk_bytes, hasher, on_bytes
        )
    except FileNotFoundError:
        return Reading(found=False)
    except (OSError, RuntimeError, StreamportError) as exc:
        # RuntimeError: local storage's word for a file shorter than the span asked for.
        return Reading(found=True, size=stored.size, error=failure_reason(exc))
    if count != stored.size:
        return Reading(
            found=True,
            size=stored.size,
            error=f"the read ended after {count} of {stored.size} bytes",
        )
    return Reading(found=True, size=stored.size, sha256=hasher.hexdigest() if hasher else None)
