"""One pass over a whole library: every object the catalog names is read and judged,
``jobs`` at a time, then storage is listed for bytes no row names. Findings go to a callback
as they come; the pass only reads, never repairs or removes."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from app.config import Settings
from app.errors import StreamportError
from app.maintenance.findings import Expected, Kind, Problem, Tally, is_orphan, judge
from app.maintenance.readers import (
    ORIGINAL,
    CatalogReader,
    VerifyAborted,
    expectations,
    failure_reason,
    inspect,
)
from app.storage import Storage, create_storage

MiB = 2**20
# Large reads let hashlib release the GIL for long stretches and keep per-call overhead
# (a thread hop, a syscall, an S3 body read) negligible; two per job stay in memory.
READ_CHUNK_BYTES = 8 * MiB
# Objects read at once: two give the disk a second read in flight and a second core to hash.
DEFAULT_JOBS = 2
MAX_JOBS = 64
KEYS_PER_QUERY = 500
PROGRESS_SECONDS = 1.0


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
        candidates = await self._unnamed_keys()
        if not candidates:
            return
        # Keys of this machine's requests whose rows are not committed yet.
        held = await anyio.to_thread.run_sync(self.storage.scratch.held_keys)
        now = datetime.now(UTC)
        for start in range(0, len(candidates), KEYS_PER_QUERY):
            batch = candidates[start : start + KEYS_PER_QUERY]
            # Rows committed since their page was read name their keys by now.
            named_now = await self.catalog.named(batch)
            for key in batch:
                if key not in named_now and key not in held:
                    await self._judge_unnamed(key, now, orphan_age_seconds)

    async def _unnamed_keys(self) -> list[str]:
        """The listed keys no row named while the rows were read; frees that set after."""
        candidates = []
        try:
            async for stored in self.storage.listing():
                if stored.key not in self.named:
                    candidates.append(stored.key)
        except (OSError, StreamportError) as exc:
            raise VerifyAborted(f"cannot list storage: {failure_reason(exc)}") from exc
        self.named.clear()
        return candidates

    async def _judge_unnamed(self, key: str, now: datetime, orphan_age_seconds: float) -> None:
        try:
            info = await self.storage.info(key)
        except FileNotFoundError:
            return  # removed meanwhile
        except (OSError, StreamportError) as exc:
            self.found(Problem(Kind.UNREADABLE, key, reason=failure_reason(exc)))
            return
        if is_orphan(info.modified_at, now, orphan_age_seconds):
            self.found(Problem(Kind.ORPHAN, key, found_size=info.size, stored_at=info.modified_at))
        else:
            self.tally.recent += 1


async def _open_storage(settings: Settings) -> Storage:
    storage = create_storage(settings)
    try:
        await storage.prepare()
    except (OSError, StreamportError) as exc:
        raise VerifyAborted(f"cannot open storage: {failure_reason(exc)}") from exc
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
