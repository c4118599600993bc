"""Rollup reads by metric: index (store_id, metric, bucket_start), covering on PostgreSQL.

Every reader of ``rollups`` (analytics series, the store ranking, store threshold rules)
selects a store's rollups of one or a few metrics over a time range. With only
``(store_id, bucket_start)`` PostgreSQL fetched every metric's row of the range from the table
and discarded most of them (a day of footfall read the rows of all twelve series; a week, some
ten thousand scattered table pages). This index leads with the metric, and on PostgreSQL it
carries the columns the queries add up (``INCLUDE``), so they read the index alone (an
index-only scan, once VACUUM has marked the pages all-visible). It replaces
``ix_rollups_store_bucket``, which no query needs any more, so ingest still maintains two
indexes on ``rollups``. Measured by ``benchmarks/bench_api.py`` (BENCHMARKS.md).

Building it locks rollup writes while it runs (minutes on tens of millions of rows; ingest
waits, edges keep their outboxes and retry).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDE = ["camera_id", "target_id", "count", "sum", "min", "max"]


def upgrade() -> None:
    """Create ``ix_rollups_store_metric_bucket`` and drop ``ix_rollups_store_bucket``."""
    op.create_index(
        "ix_rollups_store_metric_bucket",
        "rollups",
        ["store_id", "metric", "bucket_start"],
        postgresql_include=INCLUDE,
    )
    op.drop_index("ix_rollups_store_bucket", table_name="rollups")


def downgrade() -> None:
    """Put ``ix_rollups_store_bucket`` back and drop the metric index."""
    op.create_index("ix_rollups_store_bucket", "rollups", ["store_id", "bucket_start"])
    op.drop_index("ix_rollups_store_metric_bucket", table_name="rollups")
