"""The hub's hourly rollup sums in ``bench_api``: filled the way production fills them, and what
keeping them costs ingest.

* **Fill**: rows loaded with ``COPY`` bypass ingest, as rows stored before the hourly table
  existed did; production fills the table from those with migration 0012 when it upgrades
  (``retail-hub migrate``). The bench loads at the revision before it and then migrates,
  timing that step; on a reused database ``--refill-hourly`` downgrades past 0012 (dropping the
  table) and migrates again.
* **Ingest probe**: new data reaches the table through ``ingest_batch``, in the transaction that
  stores the minute rows. The probe ingests a few minutes of every store (one batch per store
  and minute, as an edge sends them) just after the loaded days, times each batch and the
  hourly upsert inside it, checks the hourly rows against the minute rows, and deletes what it
  wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from _common import REPO

HOURLY_REVISION = "0012"  # the migration that creates and fills rollups_hourly
PROBE_DEVICE = "bench-probe"


@dataclass
class HourlyFill:
    """Migration 0012 run over the loaded minute rows (seconds, rows before and after)."""

    seconds: float
    minute_rows: int
    hourly_rows: int


@dataclass
class IngestProbe:
    """Batches ingested through the hub's ingest service, milliseconds per batch."""

    batches: int
    rollups_per_batch: int
    batch_ms: list[float]
    hourly_ms: list[float]

    def pct(self, values: list[float], q: float) -> float:
        """Percentile ``q`` of ``values``."""
        return float(np.percentile(values, q))


def migrate(url: str, revision: str = "head") -> float:
    """``retail-hub migrate --revision REVISION``; seconds it took."""
    env = {**os.environ, "DATABASE_URL": url}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cloud_hub.cli", "migrate", "--revision", revision],
                   env=env, check=True, cwd=REPO, capture_output=True)  # fmt: skip
    return time.perf_counter() - t0


def downgrade(url: str, revision: str) -> float:
    """Alembic downgrade to ``revision`` (``retail-hub migrate`` only goes up); seconds."""
    from alembic import command

    from cloud_hub.migrate import alembic_config

    t0 = time.perf_counter()
    command.downgrade(alembic_config(url), revision)
    return time.perf_counter() - t0


def revision(dsn: str) -> str | None:
    """The database's Alembic revision (None before the first migration)."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
        if exists is None or exists[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def has_hourly(rev: str | None) -> bool:
    """Whether revision ``rev`` has the hourly table (revisions are zero-padded numbers)."""
    return rev is not None and rev >= HOURLY_REVISION


def fill_by_migration(url: str, dsn: str) -> HourlyFill:
    """Migrate to head from below 0012, timing it: the table is filled from the minute rows."""
    seconds = migrate(url)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM rollups), (SELECT count(*) FROM rollups_hourly)"
        ).fetchone()
    assert row is not None
    return HourlyFill(seconds, int(row[0]), int(row[1]))


def _batch(store: str, minute_ts: int, seq: int, series: list[tuple[str, str, str, str]]) -> Any:
    from common.sync import SyncRecord, TelemetryBatch
    from common.telemetry import Rollup

    records = []
    for i, (camera, target, metric, kind) in enumerate(series):
        fields: dict[str, Any] = {
            "store_id": store, "camera_id": camera, "target_id": target, "metric": metric,
            "bucket_start": minute_ts, "interval_s": 60, "kind": kind,
        }  # fmt: skip
        if kind == "counter":
            r = Rollup(**fields, count=3 + i)
        else:
            r = Rollup(**fields, count=600, sum=900.0 + i, min=0.0, max=4.0)
        records.append(SyncRecord(seq=seq + i, kind="rollup", created_at=float(minute_ts),
                                  body=r.model_dump(mode="json")))  # fmt: skip
    return TelemetryBatch(batch_id=f"probe-{store}-{minute_ts}", store_id=store,
                          device_id=f"{PROBE_DEVICE}-{store}", sent_at=float(minute_ts + 60),
                          records=records)  # fmt: skip


def ingest_probe(
    url: str, dsn: str, stores: list[str], first_minute: int, minutes: int,
    series: list[tuple[str, str, str, str]],
) -> IngestProbe:  # fmt: skip
    """Ingest ``minutes`` minutes of every store from ``first_minute`` (UNIX s) through the
    hub's ingest service, one transaction per batch; check and delete what it wrote."""
    from cloud_hub.db import create_hub_engine
    from cloud_hub.services import ingest

    engine = create_hub_engine(url, pool_size=1)
    hourly_ms: list[float] = []
    add: Callable[..., int] = ingest.add_to_hours

    def timed_add(*args: Any) -> int:
        t = time.perf_counter()
        try:
            return add(*args)
        finally:
            hourly_ms.append(1000 * (time.perf_counter() - t))

    ingest.add_to_hours = timed_add  # type: ignore[assignment]
    batch_ms = []
    try:
        seq = 1
        for m in range(minutes):
            for store in stores:
                b = _batch(store, first_minute + 60 * m, seq, series)
                t = time.perf_counter()
                with engine.begin() as conn:
                    ingest.ingest_batch(conn, b, time.time(), strict_json=True)
                batch_ms.append(1000 * (time.perf_counter() - t))
            seq += len(series)
    finally:
        ingest.add_to_hours = add
        engine.dispose()
    with psycopg.connect(dsn, autocommit=True) as pgc:
        diff = pgc.execute(
            "SELECT count(*) FROM (SELECT store_id, metric, bucket_start - bucket_start %% 3600 h,"
            " camera_id, target_id, sum(count) n, sum(sum) s FROM rollups WHERE bucket_start >= %s"
            " GROUP BY 1, 2, 3, 4, 5) m FULL JOIN (SELECT * FROM rollups_hourly"
            " WHERE hour_start >= %s) x ON (m.store_id, m.metric, m.h, m.camera_id, m.target_id)"
            " = (x.store_id, x.metric, x.hour_start, x.camera_id, x.target_id)"
            " WHERE m.n IS DISTINCT FROM x.count OR abs(coalesce(m.s, 0) - coalesce(x.sum, 0))"
            " > 1e-9 * abs(coalesce(m.s, 1))",
            (first_minute - first_minute % 3600, first_minute - first_minute % 3600),
        ).fetchone()
        assert diff is not None and diff[0] == 0, f"{diff[0]} probe hours differ"  # type: ignore[index]
        pgc.execute("DELETE FROM rollups WHERE bucket_start >= %s", (first_minute,))
        pgc.execute("DELETE FROM rollups_hourly WHERE hour_start >= %s",
                     (first_minute - first_minute % 3600,))  # fmt: skip
        for table in ("received_records", "devices"):
            pgc.execute(f"DELETE FROM {table} WHERE device_id LIKE %s", (PROBE_DEVICE + "-%",))
    return IngestProbe(len(batch_ms), len(series), batch_ms, hourly_ms)
