"""Periodic jobs that run exactly once per period across every hub process.

Time is cut into periods of ``period_s`` seconds aligned to the UNIX epoch. Before a process
runs period ``p`` of a job it inserts the row ``(job, p)`` into ``job_runs`` in its own
committed transaction (``ON CONFLICT DO NOTHING``); only the process whose insert went in runs
the job, every other one finds the row and skips that period. The primary key makes this hold
on SQLite (writers are serialised) and on PostgreSQL (a second insert of the same key waits for
the first transaction and then does nothing) alike, and the row stays as a record of who ran
what, when, and how it ended (docs/decisions/0009-periodic-jobs.md says why not an advisory
lock). A process that dies while running its period leaves the row without an outcome; the
next period runs as usual (every job here catches up on what an earlier period missed).

``JobScheduler`` runs one thread per job: wake at each period boundary, claim, run, record.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from cloud_hub.models import JOB_RUNS
from cloud_hub.services.sql import insert_rows

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Job:
    """A periodic job: its name, its period (whole seconds, >= 1) and what it runs; ``run``
    gets the hub clock (UNIX s) at the start of the run."""

    name: str
    period_s: int
    run: Callable[[float], object]

    def __post_init__(self) -> None:
        if self.period_s < 1:
            raise ValueError(f"job {self.name}: period_s must be >= 1 s, got {self.period_s}")


def period_start(now: float, period_s: int) -> int:
    """Start (UNIX s) of the period of ``period_s`` seconds that holds ``now``."""
    return math.floor(now / period_s) * period_s


def default_runner_name() -> str:
    """``host:pid``: which process claimed a period, for the record."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_period(conn: Connection, job: str, start: int, runner: str, now: float) -> bool:
    """Insert the claim of ``(job, start)``; True when this call made it (run the job), False
    when another process already holds it. Commit before running the job."""
    c = JOB_RUNS.c
    row = {"job": job, "period_start": start, "runner": runner, "claimed_at": now}
    got = insert_rows(
        conn, JOB_RUNS, [row], skip_conflicts_on=[c.job, c.period_start], returning=[c.job]
    )
    return bool(got)


def finish_period(
    conn: Connection, job: str, start: int, now: float, error: str | None = None
) -> None:
    """Record how period ``start`` of ``job`` ended (``error`` None: ok)."""
    c = JOB_RUNS.c
    conn.execute(
        update(JOB_RUNS)
        .where(c.job == job, c.period_start == start)
        .values(
            finished_at=now,
            outcome="ok" if error is None else "failed",
            error=None if error is None else error[-MAX_ERROR_CHARS:],
        )
    )


def prune_job_runs(conn: Connection, before: float) -> int:
    """Delete claims of periods that started before ``before`` (UNIX s); how many."""
    result = conn.execute(delete(JOB_RUNS).where(JOB_RUNS.c.period_start < before))
    return int(result.rowcount or 0)


def run_period(
    engine: Engine, job: Job, start: int, runner: str, clock: Callable[[], float]
) -> bool:
    """Claim period ``start`` of ``job`` and, if this process got it, run it and record the
    outcome. True when it ran here. A job's exception is logged and recorded, not raised;
    a database error while claiming propagates (nothing ran)."""
    with engine.begin() as conn:
        if not claim_period(conn, job.name, start, runner, clock()):
            return False
    error = None
    try:
        job.run(clock())
    except Exception as exc:  # a job's failure must not stop the scheduler; it is recorded
        error = "".join(traceback.format_exception_only(exc)).strip()
        log.warning("job %s period %d failed: %s", job.name, start, error)
        log.debug("job %s traceback:\n%s", job.name, traceback.format_exc())
    with engine.begin() as conn:
        finish_period(conn, job.name, start, clock(), error)
    return True


class JobScheduler:
    """Runs ``jobs`` on ``engine``, one thread per job, each period claimed before it runs.

    ``start()`` and ``stop()`` are the lifecycle; several schedulers (threads, processes,
    hosts) on one database run each period of each job once between them. Replicas' clocks
    should agree to well within a period (NTP): a period's key comes from each one's clock.
    """

    def __init__(
        self,
        engine: Engine,
        jobs: Sequence[Job],
        runner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        self.engine = engine
        self.jobs = list(jobs)
        self.runner = runner or default_runner_name()
        self.clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start one thread per job."""
        if self._threads:
            raise RuntimeError("scheduler already started")
        self._stop.clear()
        for job in self.jobs:
            t = threading.Thread(target=self._loop, args=(job,), name=f"job-{job.name}")
            t.daemon = True  # a stuck job must not keep a stopping process alive for ever
            t.start()
            self._threads.append(t)
        plan = ", ".join(f"{j.name} every {j.period_s} s" for j in self.jobs)
        log.info("scheduler %s: %s", self.runner, plan or "no jobs")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop waking the jobs and wait up to ``timeout_s`` for runs in progress."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("%s still running at stop; abandoned", t.name)
        self._threads = []

    def _loop(self, job: Job) -> None:
        last: int | None = None
        failing = False
        while not self._stop.is_set():
            start = period_start(self.clock(), job.period_s)
            if start != last:
                last = start
                try:
                    run_period(self.engine, job, start, self.runner, self.clock)
                    if failing:
                        log.info("job %s: database reachable again", job.name)
                    failing = False
                except SQLAlchemyError as exc:
                    # Logged once per outage, not every period (a 5 s job would flood the log).
                    log.log(
                        logging.DEBUG if failing else logging.WARNING,
                        "job %s: cannot claim period %d (%s); trying again next period",
                        job.name, start, " ".join(str(exc).split())[:300],
                    )  # fmt: skip
                    failing = True
            next_start = period_start(self.clock(), job.period_s) + job.period_s
            self._stop.wait(max(0.0, next_start - self.clock()) + 0.005)
