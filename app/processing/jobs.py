"""Processing jobs as catalog rows: enqueue, claim atomically, renew, finish, recover.

Callers own the transaction and commit, as with ``catalog``.
"""

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import ProcessingJob

LEASE_SECONDS = 30
MAX_ATTEMPTS = 3


def worker_identity() -> str:
    """``host:pid:nonce`` of this process, stored on the jobs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    media_id: str
    attempts: int


async def claim_next(session: AsyncSession, worker: str) -> ClaimedJob | None:
    """Take the pending job of lowest fair rank (then the oldest) for ``worker``; two
    workers never get the same job.

    One UPDATE … WHERE state = 'pending' … RETURNING: SQLite runs it under its single writer
    lock, and PostgreSQL skips rows another transaction has locked.
    """
    now = _now()
    oldest_pending = (
        select(ProcessingJob.id)
        .where(ProcessingJob.state == "pending")
        .order_by(ProcessingJob.fair_rank, ProcessingJob.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(ProcessingJob)
        .where(ProcessingJob.id == oldest_pending, ProcessingJob.state == "pending")
        .values(
            state="running",
            step=None,
            progress=0.0,
            error=None,
            claimed_by=worker,
            lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
            attempts=ProcessingJob.attempts + 1,
            updated_at=now,
        )
        .returning(ProcessingJob.id, ProcessingJob.media_id, ProcessingJob.attempts)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).one_or_none()
    return ClaimedJob(*row) if row else None


async def report(
    session: AsyncSession, job_id: int, worker: str, *, step: str | None, progress: float
) -> bool:
    """Record progress and renew the lease; ``False`` if the job is no longer ours (the media
    was deleted, or the claim expired and another worker took it)."""
    now = _now()
    result = await session.execute(
        update(ProcessingJob)
        .where(ProcessingJob.id == job_id, ProcessingJob.claimed_by == worker)
        .values(
            step=step,
            progress=progress,
            lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def finish(
    session: AsyncSession, job_id: int, worker: str, state: str, error: str | None = None
) -> None:
    """End a job as done, failed or skipped."""
    await session.execute(
        update(ProcessingJob)
        .where(ProcessingJob.id == job_id, ProcessingJob.claimed_by == worker)
        .values(
            state=state,
            step=None,
            progress=1.0 if state == "done" else 0.0,
            error=error,
            claimed_by=None,
            lease_expires_at=None,
            updated_at=_now(),
        )
        .execution_options(synchronize_session=False)
    )


async def requeue_abandoned(session: AsyncSession, dead_workers_on_this_host: set[str]) -> int:
    """Put running jobs whose worker is gone back in the queue; returns how many.

    A worker is gone when its lease ran out, or at once when it was a process on this host
    that no longer exists (a crash or a kill, seen at start-up).
    """
    now = _now()
    expired = (ProcessingJob.lease_expires_at < now) | ProcessingJob.claimed_by.in_(
        dead_workers_on_this_host
    )
    result = await session.execute(
        update(ProcessingJob)
        .where(ProcessingJob.state == "running", expired)
        .values(state="pending", claimed_by=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount  # type: ignore[attr-defined,no-any-return]


async def running_workers(session: AsyncSession) -> set[str]:
    """The identities holding running jobs."""
    rows = await session.scalars(
        select(ProcessingJob.claimed_by).where(ProcessingJob.state == "running").distinct()
    )
    return {worker for worker in rows if worker}


def is_dead_local_worker(worker: str) -> bool:
    """Whether ``worker`` names a process on this host that no longer runs."""
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # The pid runs, but it may have been reused: only its own lease can tell.
    return False


async def get_job(session: AsyncSession, media_id: str) -> ProcessingJob | None:
    """The processing job of a media, if any."""
    return await session.scalar(select(ProcessingJob).where(ProcessingJob.media_id == media_id))


async def renew(session: AsyncSession, job_id: int, worker: str) -> bool:
    """Extend the lease of a running job; ``False`` if it is no longer ours."""
    result = await session.execute(
        update(ProcessingJob)
        .where(ProcessingJob.id == job_id, ProcessingJob.claimed_by == worker)
        .values(lease_expires_at=_now() + timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def release(session: AsyncSession, job_id: int, worker: str) -> None:
    """Give a running job back to the queue (this worker is shutting down)."""
    await session.execute(
        update(ProcessingJob)
        .where(ProcessingJob.id == job_id, ProcessingJob.claimed_by == worker)
        .values(
            state="pending",
            claimed_by=None,
            lease_expires_at=None,
            attempts=ProcessingJob.attempts - 1,
            updated_at=_now(),
        )
        .execution_options(synchronize_session=False)
    )


def snapshot(job: ProcessingJob | None) -> dict[str, object]:
    """The public view of a job; a media without one counts as done."""
    if job is None:
        return {"state": "done", "progress": 1.0, "step": None, "error": None}
    return {"state": job.state, "progress": job.progress, "step": job.step, "error": job.error}
