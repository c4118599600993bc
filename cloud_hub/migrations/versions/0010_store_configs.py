"""Store configuration versions and config rollouts; the device twin's desired and reported
layout.

``store_configs`` holds each store's layout versions (immutable, numbered per store);
``config_rollouts`` (with ``config_rollout_devices`` and ``config_rollout_events``) rolls one
version out to the store's devices; ``device_twins`` gains the layout version a device should
run and the one it reports. The new twin columns are nullable: every existing device keeps
running its own file's layout until a rollout names one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TWIN_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("desired_config_version", sa.Integer()),
    ("desired_config_rollout_id", sa.Integer()),
    ("reported_config_version", sa.Integer()),
    ("reported_config_step", sa.String()),
    ("reported_config_rollout_id", sa.Integer()),
    ("reported_config_at", sa.Float()),
]


def upgrade() -> None:
    """Create the store config and config rollout tables; add the twin's layout columns."""
    op.create_table(
        "store_configs",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "version"),
    )
    op.create_table(
        "config_rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("running_store", sa.String(), nullable=True),
        sa.Column("waves", sa.JSON(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("wave_started_at", sa.Float(), nullable=True),
        sa.Column("wave_timeout_s", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("running_store"),
    )
    op.create_index("ix_config_rollouts_state", "config_rollouts", ["state"], unique=False)
    op.create_index("ix_config_rollouts_store", "config_rollouts", ["store_id", "id"], unique=False)
    op.create_table(
        "config_rollout_devices",
        sa.Column("rollout_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("rollout_id", "device_id"),
    )
    op.create_table(
        "config_rollout_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_config_rollout_events_rollout",
        "config_rollout_events",
        ["rollout_id", "id"],
        unique=False,
    )
    with op.batch_alter_table("device_twins") as batch:
        for name, type_ in TWIN_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    """Drop the twin's layout columns and the store config and config rollout tables."""
    with op.batch_alter_table("device_twins") as batch:
        for name, _ in reversed(TWIN_COLUMNS):
            batch.drop_column(name)
    op.drop_index("ix_config_rollout_events_rollout", table_name="config_rollout_events")
    op.drop_table("config_rollout_events")
    op.drop_table("config_rollout_devices")
    op.drop_index("ix_config_rollouts_store", table_name="config_rollouts")
    op.drop_index("ix_config_rollouts_state", table_name="config_rollouts")
    op.drop_table("config_rollouts")
    op.drop_table("store_configs")
