"""Hourly sums of the minute rollups: ``rollups_hourly``, filled from the rollups already stored.

One row per (store, camera, target, metric, UTC hour): counts and sums added, min and max the
extremes of every ``rollups`` row whose ``bucket_start`` lies in the hour. From this revision on
ingest adds each batch to it in the same transaction as the minute rows
(``services.rollups_hourly``); this migration fills it once from what is already stored, in one
``INSERT ... SELECT ... GROUP BY`` (on 47 M minute rows: see BENCHMARKS.md, "Hub analytics API";
rollup writes wait meanwhile, edges keep their outboxes and retry). The analytics series of
hour, day and week buckets and the store ranking read whole hours from it
(docs/decisions/0013-hourly-rollups.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOUR = "bucket_start - bucket_start % 3600"  # bucket_start >= 0: truncation is floor
BACKFILL = (
    "INSERT INTO rollups_hourly"
    " (store_id, metric, hour_start, camera_id, target_id, count, sum, min, max)"
    f" SELECT store_id, metric, {HOUR}, camera_id, target_id,"
    " sum(count), sum(sum), min(min), max(max)"
    f" FROM rollups GROUP BY store_id, metric, {HOUR}, camera_id, target_id"
)


def upgrade() -> None:
    """Create ``rollups_hourly`` and fill it from ``rollups``."""
    op.create_table(
        "rollups_hourly",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("hour_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("camera_id", sa.String(), nullable=False),
        sa.Column("target_id", sa.String(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=True),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("store_id", "metric", "hour_start", "camera_id", "target_id"),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("SET LOCAL work_mem = '256MB'")  # group tens of millions of rows in memory
    op.execute(BACKFILL)
    if postgresql:
        op.execute("ANALYZE rollups_hourly")  # plans that know its size from the first query


def downgrade() -> None:
    """Drop ``rollups_hourly`` (the minute rollups hold everything it held)."""
    op.drop_table("rollups_hourly")
