"""Stores (name, IANA time zone, group) and API keys (hashed) for the HQ read API.

Stores the hub already holds data for are registered from ``devices`` (name = id, time zone
UTC), as the first batch from a new store registers it from now on.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``stores`` (filled from ``devices``) and ``api_keys``."""
    op.create_table(
        "stores",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("group_name", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("store_id"),
    )
    op.execute(
        "INSERT INTO stores (store_id, name, timezone, group_name, created_at, updated_at) "
        "SELECT store_id, store_id, 'UTC', NULL, MIN(first_seen), MIN(first_seen) "
        "FROM devices GROUP BY store_id"
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("key_prefix", sa.String(), nullable=False),
        sa.Column("all_stores", sa.Boolean(), nullable=False),
        sa.Column("store_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )


def downgrade() -> None:
    """Drop ``api_keys`` and ``stores``."""
    op.drop_table("api_keys")
    op.drop_table("stores")
