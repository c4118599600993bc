"""Initial hub schema: ledger, dead letters, rollups, heatmaps, events, outbox drops, devices.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_bigint(name: str = "seq") -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), autoincrement=False, nullable=False)


def upgrade() -> None:
    """Create the ingest tables."""
    op.create_table(
        "received_records",
        sa.Column("device_id", sa.String(), nullable=False),
        _key_bigint(),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("batch_id", sa.String(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=True),
        sa.Column("store_id", sa.String(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("batch_id", sa.String(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("raw_encoding", sa.String(), nullable=False),
        sa.Column("raw_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dead_letters_device_seq", "dead_letters", ["device_id", "seq"])
    op.create_table(
        "rollups",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("camera_id", sa.String(), nullable=False),
        sa.Column("target_id", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        _key_bigint("bucket_start"),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=True),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.Column("histogram_edges", sa.JSON(), nullable=True),
        sa.Column("histogram", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "camera_id", "target_id", "metric", "bucket_start"),
    )
    op.create_index("ix_rollups_store_bucket", "rollups", ["store_id", "bucket_start"])
    op.create_table(
        "heatmaps",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("camera_id", sa.String(), nullable=False),
        _key_bigint("bucket_start"),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("grid_w", sa.Integer(), nullable=False),
        sa.Column("grid_h", sa.Integer(), nullable=False),
        sa.Column("person_seconds", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "camera_id", "bucket_start"),
    )
    op.create_table(
        "events",
        sa.Column("device_id", sa.String(), nullable=False),
        _key_bigint(),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("camera_id", sa.String(), nullable=False),
        sa.Column("target_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.Float(), nullable=False),
        sa.Column("track_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq"),
    )
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"])
    op.create_table(
        "outbox_drops",
        sa.Column("device_id", sa.String(), nullable=False),
        _key_bigint(),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("seq_ranges", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("dropped_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq"),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("last_batch_at", sa.Float(), nullable=False),
        sa.Column("records_received", sa.BigInteger(), nullable=False),
        sa.Column("duplicates_received", sa.BigInteger(), nullable=False),
        sa.Column("dead_lettered", sa.BigInteger(), nullable=False),
        sa.Column("dropped_at_edge", sa.BigInteger(), nullable=False),
        sa.Column("max_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id"),
    )


def downgrade() -> None:
    """Drop the ingest tables."""
    for name in (
        "devices",
        "outbox_drops",
        "events",
        "heatmaps",
        "rollups",
        "dead_letters",
        "received_records",
    ):
        op.drop_table(name)
