"""Snapshots: gated images (alert snapshots, heatmap images) synced from the edges.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the snapshots table."""
    op.create_table(
        "snapshots",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("camera_id", sa.String(), nullable=False),
        sa.Column("taken_at", sa.Float(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("alert_rule", sa.String(), nullable=True),
        sa.Column("media_type", sa.String(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("faces_blurred", sa.Integer(), nullable=False),
        sa.Column("heads_blurred", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq"),
    )
    op.create_index("ix_snapshots_taken_at", "snapshots", ["taken_at"])
    op.create_index("ix_snapshots_store_taken", "snapshots", ["store_id", "taken_at"])


def downgrade() -> None:
    """Drop the snapshots table."""
    op.drop_index("ix_snapshots_store_taken", table_name="snapshots")
    op.drop_index("ix_snapshots_taken_at", table_name="snapshots")
    op.drop_table("snapshots")
