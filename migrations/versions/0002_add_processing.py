"""add processing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processing_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("media_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("media_id"),
    )
    with op.batch_alter_table("processing_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_processing_jobs_state"), ["state"], unique=False)

    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.add_column(sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("duration", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("video_codec", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("audio_codec", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("bitrate", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("container", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("playable", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("poster_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("thumbnail_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("playback_key", sa.String(length=255), nullable=True))

    # Media stored before processing existed get processed too.
    op.execute(
        "INSERT INTO processing_jobs (media_id, state, progress, attempts, created_at, updated_at) "
        "SELECT id, 'pending', 0, 0, created_at, created_at FROM media"
    )


def downgrade() -> None:
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_column("playback_key")
        batch_op.drop_column("thumbnail_key")
        batch_op.drop_column("poster_key")
        batch_op.drop_column("playable")
        batch_op.drop_column("container")
        batch_op.drop_column("bitrate")
        batch_op.drop_column("audio_codec")
        batch_op.drop_column("video_codec")
        batch_op.drop_column("height")
        batch_op.drop_column("width")
        batch_op.drop_column("duration")
        batch_op.drop_column("modified_at")

    with op.batch_alter_table("processing_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_jobs_state"))

    op.drop_table("processing_jobs")
