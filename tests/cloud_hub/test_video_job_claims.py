"""Claiming video jobs from several runners at once, on SQLite and on PostgreSQL.

A store's jobs run one at a time (each job runs as the store's one virtual upload device, whose
outbox seqs must not interleave): however many runners race, a store never has two jobs with a
live lease, no job is taken twice, and the next job of a store is taken once the first ends.
On PostgreSQL the claim takes a lock on the store's row (``claim_job``); this is the test of
that path with real concurrent transactions.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine, select

from cloud_hub.models import VIDEO_JOBS
from cloud_hub.services.stores import ensure_store
from cloud_hub.services.video_jobs import (
    CameraIn,
    ClaimedJob,
    JobState,
    ProcessRequest,
    claim_job,
    create_job,
    finish_job,
)
from cloud_hub.services.video_uploads import ReceivedClip, VideoContainer, record_upload

STORES = ("s1", "s2", "s3")
JOBS_PER_STORE = 3
RUNNERS = 8
LEASE_S = 600.0


def _queue_jobs(engine: Engine, now: float) -> dict[int, str]:
    """JOBS_PER_STORE queued jobs per store; job id → store."""
    out: dict[int, str] = {}
    with engine.begin() as conn:
        for store in STORES:
            ensure_store(conn, store, now)
            for i in range(JOBS_PER_STORE):
                upload_id = f"{store.encode().hex():0<30}{i:02d}"
                clip = ReceivedClip(upload_id, Path("/none"), VideoContainer.MP4, 1, "0" * 64)
                record_upload(
                    conn, clip, store_id=store, recorded_at=now, created_by="test", now=now,
                    retention_s=3600,
                )  # fmt: skip
                job = create_job(
                    conn,
                    ProcessRequest(upload_id=upload_id, camera=CameraIn(id="cam")),
                    created_by="test",
                    now=now,
                )
                out[job.job_id] = store
    return out


def _race(engine: Engine, now: float) -> list[ClaimedJob]:
    """RUNNERS threads each claim once, all released together; what they got."""
    barrier = threading.Barrier(RUNNERS)
    got: list[ClaimedJob] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def runner(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            with engine.begin() as conn:
                job = claim_job(conn, f"runner-{i}", now, LEASE_S)
            if job is not None:
                with lock:
                    got.append(job)
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(RUNNERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    return got


def _running(engine: Engine) -> list[tuple[int, str, str]]:
    j = VIDEO_JOBS.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(j.id, j.store_id, j.runner).where(j.state == JobState.RUNNING.value)
        ).all()
    return [(r.id, r.store_id, r.runner) for r in rows]


def test_racing_runners_take_one_job_per_store_and_each_job_once(hub_db: Engine) -> None:
    now = time.time()
    jobs = _queue_jobs(hub_db, now)

    first = _race(hub_db, now)
    # One job per store, the oldest of each, each taken by exactly one runner.
    assert sorted(j.store_id for j in first) == sorted(STORES)
    oldest = {s: min(i for i, st in jobs.items() if st == s) for s in STORES}
    assert {j.store_id: j.job_id for j in first} == oldest
    running = _running(hub_db)
    assert sorted(r[0] for r in running) == sorted(oldest.values())
    assert len({r[2] for r in running}) == len(STORES)  # three different runners hold them

    # While those leases live, racing again takes nothing.
    assert _race(hub_db, now + 1) == []

    # One store's job ends: the next race takes that store's next job, and only it.
    done = first[0]
    holder = next(r[2] for r in running if r[0] == done.job_id)
    with hub_db.begin() as conn:
        assert finish_job(conn, done.job_id, holder, now + 2)
    second = _race(hub_db, now + 3)
    assert [(j.store_id, j.job_id) for j in second] == [
        (done.store_id, min(i for i, s in jobs.items() if s == done.store_id and i > done.job_id))
    ]

    # A lease that ran out is taken over by exactly one runner, with the attempt counted.
    later = now + LEASE_S + 10
    third = _race(hub_db, later)
    assert sorted(j.store_id for j in third) == sorted(STORES)
    assert len({j.job_id for j in third}) == len(STORES)
    taken_over = [j for j in third if j.job_id in {x.job_id for x in first}]
    assert taken_over and all(j.attempts == 2 for j in taken_over)
