"""The audit log: who uploaded, renamed, deleted, shared, changed visibility, signed in or
failed to, from which address. Rows are added in the transaction of the change they record."""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.policy import Caller
from app.catalog.models import AuditEvent

_DETAIL_MAX_CHARS = 500


def record(
    session: AsyncSession,
    action: str,
    *,
    caller: Caller | None,
    address: str,
    target: str = "",
    detail: str = "",
    username: str | None = None,
) -> None:
    """Add one event to the session (committed with the change it records)."""
    session.add(
        AuditEvent(
            at=datetime.now(UTC),
            user_id=caller.user_id if caller else None,
            username=(username if username is not None else caller.username if caller else "")[:64],
            action=action,
            target=target[:64],
            detail=detail[:_DETAIL_MAX_CHARS],
            address=address[:64],
        )
    )


async def list_events(
    session: AsyncSession, page: int = 1, per_page: int = 100
) -> tuple[Sequence[AuditEvent], int]:
    """A page of events, newest first, and the total."""
    total = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
    query = (
        select(AuditEvent)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return (await session.scalars(query)).all(), total
