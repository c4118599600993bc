"""The device twin's desired state over MQTT: ``device_twins.published_revision``, the revision
the broker retains on the device's ``desired`` topic (null: none), so the hub worker's
``desired_publish`` job publishes each newer revision once and again after a broker outage.
Existing twins start null: the first run after the upgrade publishes every current state.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``device_twins.published_revision``."""
    with op.batch_alter_table("device_twins") as batch:
        batch.add_column(sa.Column("published_revision", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop ``device_twins.published_revision``."""
    with op.batch_alter_table("device_twins") as batch:
        batch.drop_column("published_revision")
