"""``streamport verify``: re-read every stored object and hold it against the catalog.

Pure decisions come first (what a reading means, what counts as an orphan, what the summary
says), then the reading of rows and bytes, then ``run_verify``, which prints. Stored bytes and
the catalog are only ever read: what is found is reported, never repaired or removed.
"""

import asyncio
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import SQLAlchemyError

from app.catalog.db import create_engine, create_sessionmaker
from app.catalog.models import Media
from app.config import Settings
from app.errors import StreamportError
from app.storage import ByteSource, Span, SpanStream, Storage, create_storage
from app.storage.keys import is_key

MiB = 2**20
# Large reads let hashlib release the GIL for long stretches and keep per-call overhead
# (a thread hop, a syscall, an S3 body read) negligible; two per job stay in memory.
READ_CHUNK_BYTES = 8 * MiB
# Objects read at once: two give the disk a second read in flight and a second core to hash.
DEFAULT_JOBS = 2
MAX_JOBS = 64
ROWS_PER_PAGE = 500
KEYS_PER_QUERY = 500
PROGRESS_SECONDS = 1.0

ORIGINAL = "original"
# The catalog columns naming each stored object of a media.
ROLE_COLUMNS = {
    ORIGINAL: Media.storage_key,
    "poster": Media.poster_key,
    "thumbnail": Media.thumbnail_key,
    "playback": Media.playback_key,
}


class Kind(StrEnum):
    """What can be wrong with stored bytes."""

    MISSING = "MISSING"
    SIZE = "SIZE"
    CORRUPT = "CORRUPT"
    UNREADABLE = "UNREADABLE"
    ORPHAN = "ORPHAN"


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Expected:
    """What the catalog says of one stored object. Only originals have a size and digest in
    the catalog; a derived file (poster, thumbnail, playback copy) need only be readable."""

    media_id: str
    role: str
    key: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Reading:
    """What storage gave back for one key: nothing, an error, or its size and digest (no
    digest when it was not hashed, or not read because its size already condemns it)."""

    found: bool
    size: int | None = None
    sha256: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Problem:
    """One finding, printed as one line."""

    kind: Kind
    key: str
    media_id: str | None = None
    role: str | None = None
    expected_size: int | None = None
    found_size: int | None = None
    expected_sha256: str | None = None
    found_sha256: str | None = None
    reason: str | None = None
    stored_at: datetime | None = None

    def line(self) -> str:
        """``KIND`` first, then the media id and key, so the output can be grepped and cut."""
        where = self.key if self.media_id is None else f"{self.media_id} {self.key} {self.role}"
        match self.kind:
            case Kind.MISSING:
                return f"MISSING {where}"
            case Kind.SIZE:
                return f"SIZE {where} expected {self.expected_size} bytes, found {self.found_size}"
            case Kind.CORRUPT:
                return (
                    f"CORRUPT {where} expected sha256 {self.expected_sha256} "
                    f"got {self.found_sha256}"
                )
            case Kind.UNREADABLE:
                return f"UNREADABLE {where} {self.reason}"
            case Kind.ORPHAN:
                stored = _iso(self.stored_at) if self.stored_at else "at an unknown time"
                return (
                    f"ORPHAN {self.key} {self.found_size} bytes, stored {stored}, named by no row"
                )
        raise AssertionError(self.kind)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: the fields that apply to this kind."""
        fields = {
            "kind": str(self.kind),
            "key": self.key,
            "media_id": self.media_id,
            "role": self.role,
            "expected_size": self.expected_size,
            "found_size": self.found_size,
            "expected_sha256": self.expected_sha256,
            "found_sha256": self.found_sha256,
            "reason": self.reason,
            "stored_at": _iso(self.stored_at) if self.stored_at else None,
        }
        return {name: value for name, value in fields.items() if value is not None}


def expectations(row: Sequence[Any]) -> list[Expected]:
    """The objects one catalog row names: ``(id, size, sha256, storage_key, poster_key,
    thumbnail_key, playback_key)``."""
    media_id, size, sha256, *keys = row
    found = []
    for role, key in zip(ROLE_COLUMNS, keys, strict=True):
        if key is None:
            continue
        if role == ORIGINAL:
            found.append(Expected(media_id, role, key, size, sha256.lower()))
        else:
            found.append(Expected(media_id, role, key))
    return found


def worth_reading(expected: Expected, stored_size: int) -> bool:
    """Whether the bytes must be read: not when their size alone already condemns them."""
    return expected.size is None or expected.size == stored_size


def judge(expected: Expected, reading: Reading) -> Problem | None:
    """What is wrong with one object, if anything."""
    base = {"key": expected.key, "media_id": expected.media_id, "role": expected.role}
    if reading.error is not None:
        return Problem(Kind.UNREADABLE, reason=reading.error, **base)
    if not reading.found:
        return Problem(Kind.MISSING, **base)
    if expected.size is not None and reading.size != expected.size:
        return Problem(Kind.SIZE, expected_size=expected.size, found_size=reading.size, **base)
    if expected.sha256 is not None and reading.sha256 != expected.sha256:
        return Problem(
            Kind.CORRUPT,
            expected_sha256=expected.sha256,
            found_sha256=reading.sha256,
            **base,
        )
    return None


def is_orphan(stored_at: datetime, now: datetime, min_age_seconds: float) -> bool:
    """Whether bytes no row names are old enough to be an orphan rather than an upload whose
    rows are not committed yet (the start-up sweep waits as long before removing them)."""
    return (now - stored_at).total_seconds() >= min_age_seconds


@dataclass
class Tally:
    """What a run has done and found so far."""

    media: int = 0
    objects: int = 0
    bytes_read: int = 0
    original_bytes: int = 0
    problems: Counter[Kind] = field(default_factory=Counter)
    # Keys with no row but too young to judge: uploads in progress.
    recent: int = 0
    # Objects whose row changed while they were read (deleted, reprocessed): not judged.
    changed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, orphan_age_seconds: float) -> str:
        """The last line of the output."""
        rate = self.bytes_read / self.seconds / 1e6 if self.seconds > 0 else 0.0
        text = (
            f"checked {self.objects} objects of {self.media} media, {self.bytes_read:,} bytes read "
            f"in {self.seconds:.1f} s ({rate:.1f} MB/s): "
        )
        if self.problems:
            total = sum(self.problems.values())
            kinds = ", ".join(
                f"{self.problems[kind]} {kind.lower()}" for kind in Kind if self.problems[kind]
            )
            text += f"{total} problem{'s' if total != 1 else ''} ({kinds})"
        else:
            text += "no problems"
        if self.recent:
            text += (
                f"; {self.recent} object(s) stored less than {_duration(orphan_age_seconds)} ago "
                "and not catalogued yet (uploads in progress) were not judged"
            )
        if self.changed:
            text += f"; {self.changed} object(s) changed in the catalog while being read"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "media": self.media,
            "objects": self.objects,
            "bytes": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "problem_counts": {str(kind): self.problems[kind] for kind in Kind},
            "recent_uncatalogued": self.recent,
            "changed_during_run": self.changed,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


# --------------------------------------------------------------------------- catalog


class VerifyAborted(Exception):
    """Verification cannot go on: the catalog or storage is out of reach."""


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

    async def pages(self) -> AsyncIterator[list[Row[Any]]]:
        """Every row's id, size, digest and keys, in id order, a page per session: no
        transaction stays open while bytes are read, and memory holds one page."""
        columns = (Media.id, Media.size, Media.sha256, *ROLE_COLUMNS.values())
        after: str | None = None
        while True:
            query = select(*columns).order_by(Media.id).limit(ROWS_PER_PAGE)
            if after is not None:
                query = query.where(Media.id > after)
            try:
                async with self._sessions() as session:
                    page = list((await session.execute(query)).all())
            except (SQLAlchemyError, OSError) as exc:
                raise self._failed(exc) from exc
            if not page:
                return
            yield page
            after = page[-1][0]

    async def still_names(self, expected: Expected) -> bool:
        """Whether the media still exists and names the same key in the same role."""
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
        try:
            async with self._sessions() as session:
                rows = (await session.execute(query)).all()
        except (SQLAlchemyError, OSError) as exc:
            raise self._failed(exc) from exc
        return {key for row in rows for key in row if key in wanted}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# --------------------------------------------------------------------------- bytes


def _reason(exc: Exception) -> str:
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
        return Reading(found=True, error=_reason(exc))
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
        return Reading(found=True, size=stored.size, error=_reason(exc))
    if count != stored.size:
        return Reading(
            found=True,
            size=stored.size,
            error=f"the read ended after {count} of {stored.size} bytes",
        )
    return Reading(found=True, size=stored.size, sha256=hasher.hexdigest() if hasher else None)


# --------------------------------------------------------------------------- a run


@dataclass(frozen=True)
class VerifyOptions:
    """How a run goes: objects read at once, the read size, and the age from which bytes no
    row names count as orphans (``None``: what the backend's start-up sweep waits)."""

    jobs: int = DEFAULT_JOBS
    chunk_bytes: int = READ_CHUNK_BYTES
    orphan_age_seconds: float | None = None


def sweep_age_seconds(settings: Settings) -> float:
    """How old unnamed bytes must be before the start-up sweep takes them, per backend: an
    S3 object may carry the time its multipart upload began, and other nodes' uploads in
    progress are not visible from here, so S3 waits a day."""
    if settings.storage == "s3":
        from app.storage.s3 import ORPHAN_MIN_AGE_SECONDS as S3_AGE

        return S3_AGE
    from app.storage.local import ORPHAN_MIN_AGE_SECONDS as LOCAL_AGE

    return LOCAL_AGE


ProblemSink = Callable[[Problem], None]
ProgressSink = Callable[[Tally, tuple[int, int]], None]


@dataclass
class _Run:
    storage: Storage
    catalog: CatalogReader
    options: VerifyOptions
    on_problem: ProblemSink
    tally: Tally = field(default_factory=Tally)
    # Every key the rows name, for the orphan check that follows.
    named: set[str] = field(default_factory=set)
    failure: VerifyAborted | None = None

    def found(self, problem: Problem) -> None:
        self.tally.problems[problem.kind] += 1
        self.on_problem(problem)

    async def check_objects(self) -> None:
        """Every row's objects, ``jobs`` at a time."""
        send, receive = anyio.create_memory_object_stream[Expected](self.options.jobs * 2)
        async with anyio.create_task_group() as group:
            for _ in range(self.options.jobs):
                group.start_soon(self._worker, receive.clone(), group.cancel_scope)
            receive.close()
            async with send:
                try:
                    async for page in self.catalog.pages():
                        for row in page:
                            self.tally.media += 1
                            for expected in expectations(row):
                                self.named.add(expected.key)
                                await send.send(expected)
                except VerifyAborted as exc:
                    self.failure = exc
                    group.cancel_scope.cancel()
        if self.failure is not None:
            raise self.failure

    async def _worker(
        self, receive: MemoryObjectReceiveStream[Expected], scope: anyio.CancelScope
    ) -> None:
        async with receive:
            async for expected in receive:
                try:
                    await self._check(expected)
                except VerifyAborted as exc:
                    self.failure = exc
                    scope.cancel()
                    return

    def _count(self, expected: Expected) -> Callable[[int], None]:
        def count(read: int) -> None:
            self.tally.bytes_read += read
            if expected.role == ORIGINAL:
                self.tally.original_bytes += read

        return count

    async def _check(self, expected: Expected) -> None:
        reading = await inspect(
            self.storage, expected, self.options.chunk_bytes, self._count(expected)
        )
        self.tally.objects += 1
        problem = judge(expected, reading)
        if problem is None:
            return
        # A media deleted or reprocessed since its row was read no longer names these bytes.
        if not await self.catalog.still_names(expected):
            self.tally.changed += 1
            return
        self.found(problem)

    async def check_unnamed(self, orphan_age_seconds: float) -> None:
        """Keys in storage that no row names: orphans, unless an upload is still under way."""
        candidates = []
        try:
            async for stored in self.storage.listing():
                if stored.key not in self.named:
                    candidates.append(stored)
        except (OSError, StreamportError) as exc:
            raise VerifyAborted(f"cannot list storage: {_reason(exc)}") from exc
        self.named.clear()
        if not candidates:
            return
        # Keys of this machine's requests whose rows are not committed yet.
        held = await anyio.to_thread.run_sync(self.storage.scratch.held_keys)
        now = datetime.now(UTC)
        for start in range(0, len(candidates), KEYS_PER_QUERY):
            batch = candidates[start : start + KEYS_PER_QUERY]
            # Rows committed since their page was read name their keys by now.
            named_now = await self.catalog.named([stored.key for stored in batch])
            for stored in batch:
                if stored.key in named_now or stored.key in held:
                    continue
                try:
                    info = await self.storage.info(stored.key)
                except FileNotFoundError:
                    continue  # removed meanwhile
                except (OSError, StreamportError) as exc:
                    self.found(Problem(Kind.UNREADABLE, stored.key, reason=_reason(exc)))
                    continue
                if is_orphan(info.modified_at, now, orphan_age_seconds):
                    self.found(
                        Problem(
                            Kind.ORPHAN,
                            stored.key,
                            found_size=info.size,
                            stored_at=info.modified_at,
                        )
                    )
                else:
                    self.tally.recent += 1


async def _open_storage(settings: Settings) -> Storage:
    storage = create_storage(settings)
    try:
        await storage.prepare()
    except (OSError, StreamportError) as exc:
        raise VerifyAborted(f"cannot open storage: {_reason(exc)}") from exc
    return storage


async def _report_progress(run: _Run, totals: tuple[int, int], sink: ProgressSink) -> None:
    while True:
        await anyio.sleep(PROGRESS_SECONDS)
        sink(run.tally, totals)


async def verify_library(
    settings: Settings,
    options: VerifyOptions,
    on_problem: ProblemSink,
    on_progress: ProgressSink | None = None,
) -> Tally:
    """Read every object the catalog names and compare it with its row, then look for keys no
    row names; ``VerifyAborted`` when the catalog or storage cannot be used."""
    started = time.monotonic()
    orphan_age = options.orphan_age_seconds
    if orphan_age is None:
        orphan_age = sweep_age_seconds(settings)
    catalog = CatalogReader(settings.catalog_url)
    try:
        totals = await catalog.totals()
        storage = await _open_storage(settings)
        run = _Run(storage, catalog, options, on_problem)
        try:
            async with anyio.create_task_group() as group:
                if on_progress is not None:
                    group.start_soon(_report_progress, run, totals, on_progress)
                # Raised inside the group, it would come out wrapped in an ExceptionGroup.
                try:
                    await run.check_objects()
                    await run.check_unnamed(orphan_age)
                except VerifyAborted as exc:
                    run.failure = exc
                group.cancel_scope.cancel()
        finally:
            await storage.close()
    finally:
        await catalog.close()
    if run.failure is not None:
        raise run.failure
    run.tally.seconds = time.monotonic() - started
    return run.tally


# --------------------------------------------------------------------------- output


class Console:
    """Problem lines and the summary on standard output (or one JSON document at the end),
    progress on standard error: rewritten in place on a terminal, a line now and then
    otherwise."""

    def __init__(
        self, as_json: bool, quiet: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr
    ) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = out
        self.err = err
        self.problems: list[Problem] = []
        self._live = err.isatty()
        self._shown = False
        self._last = 0.0

    def problem(self, problem: Problem) -> None:
        self.problems.append(problem)
        if not self.as_json:
            self._clear()
            print(problem.line(), file=self.out, flush=True)

    def progress(self, tally: Tally, totals: tuple[int, int]) -> None:
        now = time.monotonic()
        if self.quiet or (not self._live and now - self._last < 30):
            return
        self._last = now
        media, size = totals
        share = f" ({min(100, 100 * tally.original_bytes // size)} %)" if size else ""
        text = (
            f"verify: {tally.media} of {media} media, {tally.original_bytes / 1e9:.2f} of "
            f"{size / 1e9:.2f} GB of originals{share}, "
            f"{sum(tally.problems.values())} problem(s) so far"
        )
        if self._live:
            self.err.write(f"\r{text}\x1b[K")
            self._shown = True
        else:
            self.err.write(f"{text}\n")
        self.err.flush()

    def _clear(self) -> None:
        if self._shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self._shown = False

    def finish(self, tally: Tally, orphan_age_seconds: float, sweep_age_seconds: float) -> None:
        self._clear()
        if self.as_json:
            document = {
                **tally.as_dict(),
                "orphan_age_seconds": orphan_age_seconds,
                "problems": [problem.as_dict() for problem in self.problems],
            }
            print(json.dumps(document, indent=2), file=self.out, flush=True)
            return
        print(tally.summary(orphan_age_seconds), file=self.out, flush=True)
        if tally.problems[Kind.ORPHAN]:
            print(
                "Orphans are only reported here; `streamport serve` removes those older than "
                f"{_duration(sweep_age_seconds)} when it starts.",
                file=self.out,
                flush=True,
            )

    def abort(self, reason: str) -> None:
        self._clear()
        print(f"streamport verify: {reason}", file=self.err, flush=True)
        if self.as_json:
            document = {
                "ok": False,
                "error": reason,
                "problems": [problem.as_dict() for problem in self.problems],
            }
            print(json.dumps(document, indent=2), file=self.out, flush=True)


def run_verify(settings: Settings, options: VerifyOptions, as_json: bool, quiet: bool) -> int:
    """Run a verification and print it; 0 when all is well, 1 when something is wrong, 2
    when it could not be done."""
    console = Console(as_json, quiet)
    sweep_age = sweep_age_seconds(settings)
    if options.orphan_age_seconds is None:
        options = replace(options, orphan_age_seconds=sweep_age)
    try:
        tally = asyncio.run(verify_library(settings, options, console.problem, console.progress))
    except VerifyAborted as exc:
        console.abort(str(exc))
        return 2
    except KeyboardInterrupt:
        console.abort("interrupted")
        return 130
    assert options.orphan_age_seconds is not None
    console.finish(tally, options.orphan_age_seconds, sweep_age)
    return 0 if tally.ok else 1
