"""Alembic: the migration builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import cloud_hub.models  # noqa: F401  (registers the tables)

TABLES = {
    "alembic_version",
    "alert_thresholds",
    "alerts",
    "api_keys",
    "config_rollout_devices",
    "config_rollout_events",
    "config_rollouts",
    "dead_letters",
    "device_presence",
    "devices",
    "device_credentials",
    "device_twins",
    "enrollment_tokens",
    "events",
    "heatmaps",
    "job_runs",
    "model_bundles",
    "outbox_drops",
    "received_records",
    "rollout_devices",
    "rollout_events",
    "rollouts",
    "rollups",
    "rollups_hourly",
    "shelf_slots",
    "snapshots",
    "store_configs",
    "stores",
    "video_jobs",
    "video_uploads",
    "webhook_attempts",
    "webhook_deliveries",
    "webhooks",
}


def test_migration_creates_the_tables_and_matches_the_models(hub_db: Engine) -> None:
    """``hub_db`` was migrated by Alembic; autogenerate must find nothing left to do."""
    insp = inspect(hub_db)
    assert set(insp.get_table_names()) == TABLES
    assert insp.get_pk_constraint("rollups")["constrained_columns"] == [
        "store_id",
        "camera_id",
        "target_id",
        "metric",
        "bucket_start",
    ]
    with hub_db.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, SQLModel.metadata) == []


def _hub(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud_hub.cli", *args],
        env={**os.environ, "DATABASE_URL": database_url},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_cli_migrate_is_repeatable_and_serve_refuses_an_unmigrated_database(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    refused = _hub("serve", "--port", "1", database_url=url, cwd=tmp_path)
    assert refused.returncode == 2
    assert "error: " in refused.stderr and "retail-hub migrate" in refused.stderr

    for _ in range(2):  # the second run finds the schema current and changes nothing
        done = _hub("migrate", database_url=url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    from sqlalchemy import create_engine

    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()
