"""playback plan, codecs of the playable copy, tags, image facts; HLS renditions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEDIA_COLUMNS = (
    ("playback_plan", sa.String(length=16)),
    ("playback_reason", sa.String(length=255)),
    ("codecs", sa.String(length=64)),
    ("playback_codecs", sa.String(length=64)),
    ("tag_title", sa.String(length=255)),
    ("tag_artist", sa.String(length=255)),
    ("tag_album", sa.String(length=255)),
    ("camera", sa.String(length=255)),
    ("taken_at", sa.String(length=32)),
)


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        for name, type_ in _MEDIA_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "renditions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "media_id",
            sa.String(length=32),
            sa.ForeignKey("media.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bandwidth", sa.BigInteger(), nullable=False),
        sa.Column("average_bandwidth", sa.BigInteger(), nullable=False),
        sa.Column("codecs", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False, unique=True),
        sa.Column("playlist", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("renditions")
    with op.batch_alter_table("media") as batch:
        for name, _ in reversed(_MEDIA_COLUMNS):
            batch.drop_column(name)
