"""Periodic jobs run exactly once per period across schedulers (real PostgreSQL and SQLite),
failures are recorded, and ``retail-hub serve`` runs the hub's jobs (retention among them)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.models import JOB_RUNS, SNAPSHOTS
from cloud_hub.services.alerts import AlertFilter, list_alerts
from cloud_hub.services.jobs import Job, JobScheduler, claim_period, period_start, run_period
from cloud_hub.services.payloads import ingest_payload
from common.sync import BatchAck, encode_batch
from tests.cloud_hub.batches import batch, counter, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.services import wait_for


def test_several_schedulers_run_each_job_once_per_period(pg_hub_url: str) -> None:
    ran: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def job(name: str, period: int, runner: str) -> Job:
        def run(now: float) -> None:
            with lock:
                ran.append((name, period_start(now, period), runner))
            time.sleep(0.1)  # long enough for the others to try the same period meanwhile

        return Job(name, period, run)

    engines = [create_hub_engine(pg_hub_url, pool_size=2) for _ in range(4)]
    schedulers = [
        JobScheduler(e, [job("every_1s", 1, f"r{i}"), job("every_2s", 2, f"r{i}")], f"r{i}")
        for i, e in enumerate(engines)
    ]
    for s in schedulers:
        s.start()
    time.sleep(6.5)
    for s in schedulers:
        s.stop()
    with engines[0].connect() as conn:
        rows = conn.execute(select(JOB_RUNS)).mappings().all()
    for e in engines:
        e.dispose()

    runs = Counter((name, start) for name, start, _ in ran)
    assert max(runs.values()) == 1, [k for k, n in runs.items() if n > 1]  # never twice
    for name, period in (("every_1s", 1), ("every_2s", 2)):
        starts = sorted(s for n, s in runs if n == name)
        assert len(starts) >= (5 if period == 1 else 2), starts
        # ... and never skipped: every period from the first to the last ran.
        assert starts == list(range(starts[0], starts[-1] + period, period)), starts
        claimed = {(r["period_start"], r["runner"]) for r in rows if r["job"] == name}
        assert claimed == {(s, who) for n, s, who in ran if n == name}
    assert all(r["outcome"] == "ok" and r["finished_at"] >= r["claimed_at"] for r in rows)
    assert len({who for _, _, who in ran}) > 1  # the work was shared, not one winner


def test_a_claim_is_won_once_and_a_failure_is_recorded(hub_db: Engine) -> None:
    with hub_db.begin() as conn:
        assert claim_period(conn, "j", 600, "a", 600.5)
    with hub_db.begin() as conn:
        assert not claim_period(conn, "j", 600, "b", 600.6)
        assert claim_period(conn, "j", 660, "b", 660.1)

    def broken(now: float) -> None:
        raise RuntimeError(f"cannot at {now}")

    assert run_period(hub_db, Job("k", 60, broken), 600, "a", lambda: 601.0)
    assert not run_period(hub_db, Job("k", 60, broken), 600, "b", lambda: 602.0)
    with hub_db.connect() as conn:
        row = conn.execute(select(JOB_RUNS).where(JOB_RUNS.c.job == "k")).mappings().one()
    assert (row["runner"], row["outcome"], row["finished_at"]) == ("a", "failed", 601.0)
    assert "RuntimeError: cannot at 601.0" in row["error"]


def test_serve_runs_the_hub_jobs_and_retention_deletes_old_snapshots(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    snapshot = {
        "device_id": "d1", "store_id": "s1", "camera_id": "cam1", "purpose": "heatmap",
        "alert_rule": None, "media_type": "image/png", "width": 1, "height": 1,
        "faces_blurred": 0, "heads_blurred": 0, "sha256": "0" * 64, "size": 1, "data": b"x",
    }  # fmt: skip
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(SNAPSHOTS), [
            {**snapshot, "seq": 1, "taken_at": now - 40 * 86400, "received_at": now},
            {**snapshot, "seq": 2, "taken_at": now - 86400, "received_at": now},
        ])  # fmt: skip
    # A device last heard from 1000 s ago, with offline_after_s 300: the offline job finds it.
    ack = ingest_payload(engine, encode_batch(batch(numbered([counter(1)]))), now - 1000)
    assert isinstance(ack, BatchAck)
    hub = HubProcess(tmp_path)
    env = {
        "RETAIL_HUB_RETENTION_INTERVAL_S": "1",
        "RETAIL_HUB_OFFLINE_CHECK_INTERVAL_S": "1",
        "RETAIL_HUB_OFFLINE_AFTER_S": "300",
    }
    hub.start(url, env=env)

    def ran(job: str) -> bool:
        with engine.connect() as conn:
            q = select(JOB_RUNS.c.outcome).where(JOB_RUNS.c.job == job)
            return "ok" in conn.execute(q).scalars().all()

    try:
        wait_for(lambda: ran("retention") and ran("device_offline"), 60, "jobs run by serve")
        with engine.connect() as conn:
            kept = conn.execute(select(SNAPSHOTS.c.seq)).scalars().all()
        assert kept == [2]  # 40 days old: deleted; 1 day old: kept (30-day retention)
        with engine.connect() as conn:
            [alert] = list_alerts(conn, AlertFilter(None), 10, 0).items
        assert (alert.kind, alert.device_id, alert.state) == ("device_offline", "d1", "open")
        assert alert.raised_at.timestamp() == pytest.approx(now - 1000)
        assert "webhook delivery off in this process" in hub.log()  # no key: not scheduled
    finally:
        assert hub.stop() in CLEAN_EXIT, hub.log()
        engine.dispose()
