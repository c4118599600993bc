"""Shelf slots: the latest state of each shelf slot the edges monitor.

One row per ``(store_id, camera_id, shelf_id, slot_id)``; ingest keeps the row with the newest
``observed_at`` (late data never overwrites newer).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the shelf_slots table."""
    op.create_table(
        "shelf_slots",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("camera_id", sa.String(), nullable=False),
        sa.Column("shelf_id", sa.String(), nullable=False),
        sa.Column("slot_id", sa.String(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("product", sa.String(), nullable=True),
        sa.Column("seen_product", sa.String(), nullable=True),
        sa.Column("state_since", sa.Float(), nullable=True),
        sa.Column("empty_since", sa.Float(), nullable=True),
        sa.Column("observed_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "camera_id", "shelf_id", "slot_id"),
    )


def downgrade() -> None:
    """Drop the shelf_slots table."""
    op.drop_table("shelf_slots")
