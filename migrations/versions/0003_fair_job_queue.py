"""fair job queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processing_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("queue_key", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("fair_rank", sa.BigInteger(), nullable=False, server_default="0")
        )
    # Jobs queued before keep their order: first in, first out.
    op.execute("UPDATE processing_jobs SET fair_rank = id")
    with op.batch_alter_table("processing_jobs", schema=None) as batch_op:
        batch_op.alter_column("queue_key", server_default=None)
        batch_op.alter_column("fair_rank", server_default=None)
        batch_op.create_index(
            "ix_processing_jobs_state_fair_rank", ["state", "fair_rank", "id"], unique=False
        )
        batch_op.create_index(
            "ix_processing_jobs_queue_key_state_fair_rank",
            ["queue_key", "state", "fair_rank"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("processing_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_processing_jobs_queue_key_state_fair_rank")
        batch_op.drop_index("ix_processing_jobs_state_fair_rank")
        batch_op.drop_column("fair_rank")
        batch_op.drop_column("queue_key")
