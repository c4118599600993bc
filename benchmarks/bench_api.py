"""Hub analytics API latency at fleet scale, next to the same SQL run directly.

    python benchmarks/bench_api.py [--stores 100] [--days 30] [--clients 50] [--duration 15]
                                   [--workers 1] [--quick] [--keep-pgdata DIR]
                                   [--refill-hourly] [--no-append]

1. **Data**: a private PostgreSQL (fsync on; shared_buffers 2 GB, max_wal_size 8 GB) migrated
   with ``retail-hub migrate``, holding ``--stores`` stores in four time zones, each with two
   cameras (an entrance line; a dwell zone and a checkout queue) sending minute rollups for
   ``--days`` days, 24 h a day (zeros at night, as an edge sends them), plus one hourly heatmap
   per camera. The rows go straight into ``rollups`` and ``heatmaps`` with ``COPY``, in
   arrival order (minute by minute, every store), with the tables' indexes dropped during the
   copy and rebuilt from their own definitions after it, then ``VACUUM ANALYZE``. The ingest
   path's own speed is ``bench_sync``'s subject, not this one's. The load runs at the schema
   revision before the hourly sums (``rollups_hourly``); ``retail-hub migrate`` then fills
   them from the minute rows, as a production database upgrading fills them, and is timed
   (``_hourly.py``; ``--refill-hourly`` does it again on a reused database). A short probe
   ingests a few minutes of every store through the ingest service and times the hourly upsert
   that keeps the sums.
2. **API**: a real ``retail-hub serve --workers N`` (uvicorn; ``--workers``, default 1)
   with rate limiting and the periodic jobs off; ``--clients`` closed-loop clients
   (``httpx.AsyncClient``, one HQ-admin API key each) call one route at a time for
   ``--duration`` seconds with random stores and ranges from a pool of sampled queries.
3. **Peer**: for each sampled query, the SQL statements the hub's service issues for it
   (captured from the service itself), replayed with psycopg from as many threads for as long,
   in the same run right after the API phase of the same route. Ratio = API p95 / SQL p95.
4. **Correctness**: before timing, the API answers of sampled queries are checked against the
   rows of the direct SQL (counts, means, maxima per bucket and target; heatmap cells; ranking
   values); any difference aborts the run.

Prints a table and appends it to BENCHMARKS.md. The load average (1 min) is recorded beside
each phase: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import orjson
import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, append_section
from _hourly import (
    HOURLY_REVISION,
    HourlyFill,
    IngestProbe,
    downgrade,
    fill_by_migration,
    has_hourly,
    ingest_probe,
    migrate,
)
from _hourly import revision as db_revision

sys.path.insert(0, str(REPO))
from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.services.analytics import (
    SeriesQuery,
    footfall_series,
    occupancy_series,
    queues_series,
    visits_series,
)
from cloud_hub.services.api_keys import create_api_key
from cloud_hub.services.calendar import BucketSize
from cloud_hub.services.heatmap_totals import heatmap_totals
from cloud_hub.services.ranking import RankingMetric, RankingPeriod, rank_stores
from cloud_hub.services.stores import StoreUpdate, get_store, put_store, visible_stores
from tests.cloud_hub.hub_process import HubProcess
from tests.services import PostgresProcess

T0 = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday; the data starts here (UTC)
ZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC"]
GRID_W, GRID_H = 32, 18
FPS = 10
PG_SETTINGS = {"shared_buffers": "2GB", "max_wal_size": "8GB", "effective_cache_size": "16GB"}
# (camera, target, metric, kind): what each store's two edges send every minute
SERIES = [
    ("entrance", "door", "line_in", "counter"),
    ("entrance", "door", "line_out", "counter"),
    ("entrance", "entrance", "people", "samples"),
    ("floor", "display", "occupancy", "samples"),
    ("floor", "display", "visits", "counter"),
    ("floor", "display", "engaged", "counter"),
    ("floor", "display", "pass_bys", "counter"),
    ("floor", "display", "dwell_s", "samples"),
    ("floor", "checkout", "queue_length", "samples"),
    ("floor", "checkout", "served", "counter"),
    ("floor", "checkout", "queue_wait_s", "samples"),
    ("floor", "floor", "people", "samples"),
]
COUNTERS = {m for _, _, m, k in SERIES if k == "counter"}


# ---------------------------------------------------------------- data


def store_ids(n: int) -> list[str]:
    """Store ids ``store-000`` ... (zero-padded, so id order is number order)."""
    return [f"store-{i:03d}" for i in range(n)]


def _traffic(zone: ZoneInfo, minutes: np.ndarray, peak: float) -> np.ndarray:
    """People per minute at each UTC minute (UNIX s): 0 while closed (before 08:00 and after
    21:00 local), a midday hump while open."""
    offsets = np.array([datetime.fromtimestamp(int(t), zone).utcoffset().total_seconds()  # type: ignore[union-attr]
                        for t in minutes[::60]]).repeat(60)[: len(minutes)]  # fmt: skip
    hour = ((minutes + offsets) % 86_400) / 3600.0
    open_ = (hour >= 8) & (hour < 21)
    return np.where(open_, peak * np.sin(np.pi * (hour - 8) / 13) ** 2 + 0.2 * peak, 0.0)


def day_rollups(stores: list[tuple[str, str]], day: int, seed: int) -> np.ndarray:
    """One day of every store's minute rollups as an object array of COPY text lines, in
    arrival order (minute, store, series)."""
    rng = np.random.default_rng([seed, day])
    t = int(T0.timestamp()) + day * 86_400 + 60 * np.arange(1440)
    n_s, n_k = len(stores), len(SERIES)
    count = np.zeros((1440, n_s, n_k), np.int64)
    total = np.full((1440, n_s, n_k), np.nan)
    low, high = total.copy(), total.copy()
    for s, (sid, tz) in enumerate(stores):
        peak = 1.0 + 3.0 * (int(sid.rsplit("-", 1)[1]) % 7) / 6  # stores differ in size
        lam = _traffic(ZoneInfo(tz), t, peak)
        visits = rng.poisson(0.6 * lam)
        counters = {
            "line_in": rng.poisson(lam), "line_out": rng.poisson(lam), "visits": visits,
            "engaged": rng.binomial(visits, 0.4), "pass_bys": rng.poisson(0.5 * lam),
            "served": rng.poisson(0.5 * lam),
        }  # fmt: skip
        for k, (_, _, metric, kind) in enumerate(SERIES):
            if kind == "counter":
                count[:, s, k] = counters[metric]
                continue
            if metric == "dwell_s":
                n = visits
                mean = rng.gamma(4.0, 10.0, 1440)
            else:
                scale = {"people": 0.6, "occupancy": 1.5, "queue_length": 0.8}.get(metric, 24.0)
                n = np.full(1440, 60 * FPS)
                mean = scale * lam * rng.uniform(0.7, 1.3, 1440)
                if metric == "queue_wait_s":
                    n = np.where(lam > 0, n, 0)  # no wait estimate while nobody queues
            count[:, s, k] = n
            total[:, s, k] = mean * n
            low[:, s, k] = np.where(n > 0, np.floor(mean * 0.5), np.nan)
            high[:, s, k] = np.where(n > 0, np.ceil(mean * 1.8) + 1, np.nan)
    keep = np.array([kind == "counter" for *_, kind in SERIES])[None, None, :] | (count > 0)
    prefix = np.array(
        [[f"{sid}\t{c}\t{tg}\t{m}\t" for c, tg, m, _ in SERIES] for sid, _ in stores], object
    )
    suffix = np.array([f"\t60\t{k}\t" for *_, k in SERIES], object)
    idx = np.nonzero(keep)
    fmt = "{}{}{}{}\t{}\t{}\t{}\t" + f"{time.time():.3f}\n"
    cols = [prefix[idx[1], idx[2]], t[idx[0]], suffix[idx[2]], count[idx]]
    # COPY's NULL for the counters' sum, min and max
    floats = [
        np.where(np.isnan(a), r"\N", a.astype(str)) for a in (total[idx], low[idx], high[idx])
    ]
    return np.array(
        [fmt.format(*row) for row in zip(*(c.tolist() for c in cols + floats), strict=True)], object
    )


def day_heatmaps(stores: list[tuple[str, str]], day: int, seed: int) -> list[str]:
    """One day of hourly heatmaps (person-seconds per cell) per store camera, COPY lines."""
    rng = np.random.default_rng([seed, day, 1])
    yy, xx = np.mgrid[0:GRID_H, 0:GRID_W]
    pattern = np.exp(-((xx - 16) ** 2 / 60 + (yy - 12) ** 2 / 20)).ravel()
    out = []
    for h in range(24):
        ts = int(T0.timestamp()) + day * 86_400 + h * 3600
        for sid, tz in stores:
            lam = float(_traffic(ZoneInfo(tz), np.array([ts + 1800]), 2.0)[0])
            for camera in ("entrance", "floor"):
                cells = np.round(lam * 60 * pattern * rng.uniform(0.5, 1.5, pattern.size), 2)
                grid = orjson.dumps(cells.tolist()).decode()
                out.append(f"{sid}\t{camera}\t{ts}\t3600\t{GRID_W}\t{GRID_H}\t{grid}\t{ts}\n")
    return out


def _table_indexes(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, bool]]:
    """(name, definition, is the primary key) of each index on ``table``."""
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), x.indisprimary,"
        " pg_get_constraintdef(c.oid)"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.contype = 'p'"
        " WHERE x.indrelid = %s::regclass",
        (table,),
    ).fetchall()
    return [(n, cdef if prim else idef, prim) for n, idef, prim, cdef in rows]


@dataclass
class Loaded:
    """What the load wrote and how long it took (seconds)."""

    rollups: int
    heatmaps: int
    copy_s: float
    index_s: float
    vacuum_s: float
    table_mb: float
    index_mb: float


def load(dsn: str, stores: list[tuple[str, str]], days: int, seed: int = 7) -> Loaded:
    """COPY the fleet's rollups and heatmaps; indexes dropped during the copy, then rebuilt."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        saved = {t: _table_indexes(conn, t) for t in ("rollups", "heatmaps")}
        for table, indexes in saved.items():
            for name, _, primary in indexes:
                if primary:
                    conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
                else:
                    conn.execute(f"DROP INDEX {name}")
        t0 = time.perf_counter()
        n_roll = n_heat = 0
        cols = "store_id, camera_id, target_id, metric, bucket_start, interval_s, kind, count, sum, min, max, updated_at"  # noqa: E501
        for day in range(days):
            lines = day_rollups(stores, day, seed)
            with conn.cursor().copy(f"COPY rollups ({cols}) FROM STDIN") as cp:
                for i in range(0, len(lines), 20_000):
                    cp.write("".join(lines[i : i + 20_000]))
            n_roll += len(lines)
            heat = day_heatmaps(stores, day, seed)
            hcols = "store_id, camera_id, bucket_start, interval_s, grid_w, grid_h, person_seconds, updated_at"  # noqa: E501
            with conn.cursor().copy(f"COPY heatmaps ({hcols}) FROM STDIN") as cp:
                cp.write("".join(heat))
            n_heat += len(heat)
            print(f"  day {day + 1}/{days}: {n_roll:,} rollups, {time.perf_counter() - t0:.0f} s",
                  flush=True)  # fmt: skip
        copy_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        for table, indexes in saved.items():
            for name, definition, primary in indexes:
                if primary:
                    conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
                else:
                    conn.execute(definition)
        index_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        conn.execute("VACUUM ANALYZE rollups")
        conn.execute("VACUUM ANALYZE heatmaps")
        vacuum_s = time.perf_counter() - t2
        sizes = conn.execute(
            "SELECT sum(pg_table_size(t::regclass)), sum(pg_indexes_size(t::regclass))"
            " FROM unnest(ARRAY['rollups', 'heatmaps']) t"
        ).fetchone()
    assert sizes is not None
    return Loaded(n_roll, n_heat, copy_s, index_s, vacuum_s, sizes[0] / 2**20, sizes[1] / 2**20)


# ---------------------------------------------------------------- queries


@dataclass
class Sample:
    """One API request and the SQL statements the hub's service issues to answer it."""

    path: str
    params: dict[str, str]
    statements: list[tuple[str, Any]] = field(default_factory=list)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


Route = tuple[str, str, Callable[[random.Random, list[tuple[str, str]], int], dict[str, str]]]


def _day_range(rng: random.Random, stores: list[tuple[str, str]], days: int, n: int,
               bucket: str) -> dict[str, str]:  # fmt: skip
    sid, tz = rng.choice(stores)
    first = (T0 + timedelta(days=rng.randrange(max(1, days - n)))).date()
    z = ZoneInfo(tz)
    start, end = _local_midnight(first, z), _local_midnight(first + timedelta(days=n), z)
    out = {"store_id": sid, "start": start.isoformat(), "end": end.isoformat()}
    return out | ({"bucket": bucket} if bucket else {})


def _ranking_at(rng: random.Random, _stores: list[tuple[str, str]], days: int) -> dict[str, str]:
    lo = min(8, days // 2) * 86_400
    at = T0 + timedelta(seconds=rng.randrange(lo, days * 86_400 - 3600, 60))
    return {"metric": "footfall_in", "period": "week", "at": at.isoformat()}


ROUTES: list[Route] = [
    ("footfall hour x day", "/analytics/footfall", lambda r, s, d: _day_range(r, s, d, 1, "hour")),
    ("footfall day x week", "/analytics/footfall", lambda r, s, d: _day_range(r, s, d, 7, "day")),
    ("visits hour x day", "/analytics/visits", lambda r, s, d: _day_range(r, s, d, 1, "hour")),
    ("queues hour x day", "/analytics/queues", lambda r, s, d: _day_range(r, s, d, 1, "hour")),
    (
        "occupancy hour x day",
        "/analytics/occupancy",
        lambda r, s, d: _day_range(r, s, d, 1, "hour"),
    ),
    ("heatmap week", "/analytics/heatmap", lambda r, s, d: _day_range(r, s, d, 7, "")),
    ("ranking week vs last", "/analytics/ranking", _ranking_at),
]
SERIES_FN = {
    "/analytics/footfall": footfall_series, "/analytics/visits": visits_series,
    "/analytics/queues": queues_series, "/analytics/occupancy": occupancy_series,
}  # fmt: skip


def answer_in_process(conn: Connection, s: Sample) -> None:
    """Run the hub service for ``s`` the way its route does (store lookup, then the query)."""
    p = s.params
    if s.path == "/analytics/ranking":
        stores = visible_stores(conn, None)
        at = datetime.fromisoformat(p["at"])
        rank_stores(conn, stores, RankingMetric(p["metric"]), RankingPeriod(p["period"]), at,
                    100, 0)  # fmt: skip
        return
    store = get_store(conn, p["store_id"])
    assert store is not None
    start, end = datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"])
    if s.path == "/analytics/heatmap":
        heatmap_totals(conn, store, start, end, None, 100, 0)
        return
    q = SeriesQuery(store, start, end, BucketSize(p["bucket"]), None, None, 100, 0)
    SERIES_FN[s.path](conn, q)


def capture_sql(engine: Engine, samples: list[Sample]) -> None:
    """Fill each sample's ``statements`` with what the service executes for it."""
    current: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, params: Any, *_a: object) -> None:
        current.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            for s in samples:
                current.clear()
                answer_in_process(conn, s)
                s.statements = list(current)
    finally:
        event.remove(engine, "before_cursor_execute", record)


def run_sql(conn: psycopg.Connection[Any], s: Sample) -> list[list[tuple[Any, ...]]]:
    """The rows of each of the sample's statements, run directly."""
    return [conn.execute(stmt, params).fetchall() for stmt, params in s.statements]


# ---------------------------------------------------------------- correctness


def _key(local_start: str, bucket: str) -> int:
    """The hub's bucket key of a bucket starting at ``local_start`` (see calendar.py)."""
    dt = datetime.fromisoformat(local_start)
    if bucket in ("minute", "hour"):
        return int(dt.timestamp())
    return int(dt.replace(tzinfo=UTC).timestamp())  # local wall-clock midnight as seconds


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def api_facts(path: str, params: dict[str, str], body: dict[str, Any]) -> dict[Any, Any]:
    """The numbers of an API answer, keyed like ``sql_facts`` keys the direct SQL's rows."""
    out: dict[Any, Any] = {}
    if path == "/analytics/ranking":
        for it in body["items"]:
            for flag, name in ((1, "current"), (0, "previous")):
                if it[name] is not None:
                    out[(flag, it["store_id"])] = it[name]
        return out
    if path == "/analytics/heatmap":
        return {(it["camera_id"], it["grid_w"], it["grid_h"]): (it["buckets"], it["person_seconds"])
                for it in body["items"]}  # fmt: skip
    for b in body["items"]:
        k = _key(b["start"], params["bucket"])

        def put(camera: str, target: str, metric: str, value: Any, k: int = k) -> None:
            out[(k, camera, target, metric)] = value

        for x in b.get("lines", []):
            put(x["camera_id"], x["line_id"], "line_in", x["footfall_in"])
            put(x["camera_id"], x["line_id"], "line_out", x["footfall_out"])
        for x in b.get("zones", []):
            for m in ("visits", "engaged", "pass_bys"):
                put(x["camera_id"], x["zone_id"], m, x[m])
            if x["dwell_samples"]:
                put(x["camera_id"], x["zone_id"], "dwell_s", (x["mean_dwell_s"], x["max_dwell_s"]))
        for x in b.get("queues", []):
            put(x["camera_id"], x["zone_id"], "served", x["served"])
            if x["mean_queue_length"] is not None:
                put(x["camera_id"], x["zone_id"], "queue_length",
                    (x["mean_queue_length"], x["max_queue_length"]))  # fmt: skip
            if x["mean_wait_s"] is not None:
                put(
                    x["camera_id"],
                    x["zone_id"],
                    "queue_wait_s",
                    (x["mean_wait_s"], x["max_wait_s"]),
                )
        for x in b.get("targets", []):
            put(x["camera_id"], x["target_id"], x["metric"], (x["mean"], x["max"]))
    return out


def sql_facts(path: str, rows: list[list[tuple[Any, ...]]]) -> dict[Any, Any]:
    """The numbers in the direct SQL's rows (the first statement is the store lookup)."""
    out: dict[Any, Any] = {}
    if path == "/analytics/ranking":
        for stmt_rows in rows[1:]:
            for flag, store, n, *_ in stmt_rows:
                out[(int(flag), store)] = float(n)  # ranked by footfall_in: a counter
        return out
    if path == "/analytics/heatmap":
        for i, (camera, w, h, n) in enumerate(rows[1]):
            cells = np.sum([np.asarray(g, float) for (g,) in rows[2 + i]], axis=0)
            out[(camera, w, h)] = (n, cells.tolist())
        return out
    for k, camera, target, metric, n, total, _lo, hi in rows[1]:
        if metric in COUNTERS:
            out[(int(k), camera, target, metric)] = int(n)
        elif n:
            out[(int(k), camera, target, metric)] = (float(total) / int(n), float(hi))
    return out


def facts_differ(path: str, api: dict[Any, Any], sql: dict[Any, Any]) -> list[str]:
    """Where the API's numbers and the direct SQL's differ (empty: they agree)."""
    keys = sorted(set(api) | set(sql), key=str)
    bad = [f"{k}: api {api.get(k)!r} sql {sql.get(k)!r}" for k in keys]
    bad = [b for k, b in zip(keys, bad, strict=True) if not _close(api.get(k), sql.get(k))]
    return bad[:5]


# ---------------------------------------------------------------- timing


GRACE_S = 30.0  # a call still running this long after the phase's end is cancelled


@dataclass
class Phase:
    """Latencies (seconds) of one closed-loop phase; ``unfinished`` holds the time already
    spent by calls cancelled ``GRACE_S`` after the phase's end (lower bounds)."""

    latencies: list[float]
    unfinished: list[float]
    wall_s: float
    errors: int
    load_avg: float
    others_cores: float = math.nan  # CPU cores used by processes outside this run

    def pct(self, q: float) -> float:
        """Percentile ``q`` (0-100) in milliseconds, cancelled calls counted at their lower
        bound (so with any, the value is a lower bound too)."""
        values = self.latencies + self.unfinished
        return float(np.percentile(values, q)) * 1000 if values else math.nan

    def fmt(self, q: float) -> str:
        """``pct`` for the table, ">=" marking a lower bound."""
        return (">=" if self.unfinished else "") + f"{self.pct(q):.1f}"

    @property
    def rate(self) -> float:
        """Completed calls per second."""
        return len(self.latencies) / self.wall_s


async def _api_phase(base: str, keys: list[str], samples: list[Sample], duration_s: float,
                     seed: int) -> Phase:  # fmt: skip
    lat: list[float] = []
    cut: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=len(keys), max_keepalive_connections=len(keys))
    timeout = duration_s + GRACE_S + 60
    async with httpx.AsyncClient(
        base_url=base + "/api/v1", timeout=timeout, limits=limits
    ) as client:
        deadline = time.perf_counter() + duration_s

        async def one(i: int) -> None:
            nonlocal errors
            rng = random.Random(seed * 1000 + i)
            headers = {"Authorization": f"Bearer {keys[i]}"}
            while time.perf_counter() < deadline:
                s = rng.choice(samples)
                t = time.perf_counter()
                try:
                    resp = await asyncio.wait_for(
                        client.get(s.path, params=s.params, headers=headers),
                        deadline + GRACE_S - t,
                    )
                except TimeoutError:
                    cut.append(time.perf_counter() - t)
                    return
                if resp.status_code == 200:
                    lat.append(time.perf_counter() - t)
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(len(keys))))
        wall = time.perf_counter() - t0
    return Phase(lat, cut, min(wall, duration_s + GRACE_S), errors, os.getloadavg()[0])


def api_phase(base: str, keys: list[str], samples: list[Sample], duration_s: float,
              seed: int = 1) -> Phase:  # fmt: skip
    """``len(keys)`` clients calling random samples for ``duration_s`` seconds."""
    return asyncio.run(_api_phase(base, keys, samples, duration_s, seed))


def sql_phase(dsn: str, clients: int, samples: list[Sample], duration_s: float,
              seed: int = 1) -> Phase:  # fmt: skip
    """``clients`` threads, one psycopg connection each, running the samples' SQL."""
    lat: list[float] = []
    cut: list[float] = []
    lock = threading.Lock()
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(clients)]
    deadline = time.perf_counter() + duration_s
    done = threading.Event()

    def one(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        mine, mine_cut = [], []
        while time.perf_counter() < deadline:
            s = rng.choice(samples)
            t = time.perf_counter()
            try:
                run_sql(conns[i], s)
            except psycopg.errors.QueryCanceled:
                mine_cut.append(time.perf_counter() - t)
                break
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)
            cut.extend(mine_cut)

    def watchdog() -> None:
        if not done.wait(duration_s + GRACE_S):
            for c in conns:
                c.cancel_safe()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    dog = threading.Thread(target=watchdog)
    t0 = time.perf_counter()
    dog.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    done.set()
    dog.join()
    for c in conns:
        c.close()
    return Phase(lat, cut, min(wall, duration_s + GRACE_S), 0, os.getloadavg()[0])


class CpuMeter:
    """CPU the rest of the machine used over an interval: all busy CPU time (/proc/stat) less
    this process's, the hub's (and its workers') and the PostgreSQL cluster's (the
    postmaster's reaped children included), in cores."""

    def __init__(self, own_pids: list[int], postmaster_pid: int) -> None:
        self.own = own_pids
        self.postmaster = postmaster_pid
        self.hz = os.sysconf("SC_CLK_TCK")

    def _ours(self) -> int:
        total = 0
        for pid in Path("/proc").iterdir():
            if not pid.name.isdigit():
                continue
            try:
                f = (pid / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            ppid, n = int(f[1]), int(pid.name)
            # the hub's worker processes are its children
            if n in self.own or ppid in self.own or ppid == self.postmaster:
                total += int(f[11]) + int(f[12])
            elif n == self.postmaster:
                total += sum(int(x) for x in f[11:15])  # + its reaped backends
        return total

    def sample(self) -> tuple[float, int, int]:
        """(monotonic s, busy jiffies of the machine, jiffies of this run's processes)."""
        cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = sum(cpu) - cpu[3] - cpu[4]  # less idle and iowait
        return time.monotonic(), busy, self._ours()

    def others(self, since: tuple[float, int, int]) -> float:
        """Cores used by other processes since ``since`` (a ``sample()``)."""
        now = self.sample()
        return max(0.0, (now[1] - since[1] - (now[2] - since[2])) / self.hz / (now[0] - since[0]))


def wait_idle(dsn: str, timeout_s: float = 900.0) -> None:
    """Wait until no other statement runs on the database (a cancelled API call's query may
    still run in the hub), so phases do not overlap."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND pid <> pg_backend_pid() AND datname = current_database()"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.5)
    raise TimeoutError("statements still running after the phase")


# ---------------------------------------------------------------- the run


@dataclass
class RouteResult:
    """One route's API and direct-SQL phases and how many answers were cross-checked."""

    name: str
    path: str
    api: Phase
    sql: Phase
    checked: int
    rows_per_call: float


@dataclass
class Report:
    """Everything one run measured."""

    stores: int
    days: int
    clients: int
    duration_s: float
    loaded: Loaded | None
    routes: list[RouteResult]
    revision: str
    workers: int = 1
    fill: HourlyFill | None = None
    probe: IngestProbe | None = None


def _pg_dsn(pg: PostgresProcess, db: str) -> str:
    return f"host=127.0.0.1 port={pg.port} user=postgres dbname={db}"


def _prepare(pg: PostgresProcess, n_stores: int, days: int, clients: int, fresh: bool,
             refill: bool) -> tuple[Loaded | None, HourlyFill | None, list[str]]:  # fmt: skip
    """Migrate (always: picks up new revisions; fresh: to just before the hourly sums), load
    when ``fresh``, fill the hourly sums by migrating on when they are not there (or
    ``refill``), and make API keys."""
    url = pg.url.rsplit("/", 1)[0] + "/hub"
    dsn = _pg_dsn(pg, "hub")
    before_hourly = f"{HOURLY_REVISION}-1"
    if fresh:
        with psycopg.connect(_pg_dsn(pg, "postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE hub")
        took = migrate(url, before_hourly)
    elif refill and has_hourly(db_revision(dsn)):
        took = downgrade(url, before_hourly)  # drops rollups_hourly
    elif has_hourly(db_revision(dsn)):
        took = migrate(url)
    else:
        took = migrate(url, before_hourly)
    print(f"retail-hub migrate: {took:.1f} s (now at {db_revision(dsn)})", flush=True)
    stores = [(sid, ZONES[i % len(ZONES)]) for i, sid in enumerate(store_ids(n_stores))]
    engine = create_hub_engine(url, pool_size=1)
    now = time.time()
    keys = []
    try:
        with engine.begin() as conn:
            if fresh:
                for sid, tz in stores:
                    put_store(conn, sid, StoreUpdate(name=sid.title(), timezone=tz), now)
            for i in range(clients):
                key, _ = create_api_key(conn, Role.HQ_ADMIN, name=f"bench client {i}", now=now)
                keys.append(key)
    finally:
        engine.dispose()
    loaded = load(_pg_dsn(pg, "hub"), stores, days) if fresh else None
    fill = None
    if not has_hourly(db_revision(dsn)):
        fill = fill_by_migration(url, dsn)
        print(f"hourly sums filled by retail-hub migrate: {fill}", flush=True)
    return loaded, fill, keys


def run(n_stores: int, days: int, clients: int, duration_s: float, n_samples: int,
        pgdata: Path | None = None, workers: int = 1, refill: bool = False,
        probe_minutes: int = 10) -> Report:  # fmt: skip
    """Load (or reuse ``pgdata``), fill the hourly sums, probe ingest, serve with ``workers``
    processes, check answers, time every route; the report."""
    workdir = pgdata or Path(tempfile.mkdtemp(prefix="bench-api-pg-"))
    fresh = not (workdir / "pgdata").exists()
    pg = PostgresProcess(workdir, fsync=True)
    pg.start()
    try:
        if fresh:
            with psycopg.connect(_pg_dsn(pg, "postgres"), autocommit=True) as conn:
                for k, v in PG_SETTINGS.items():
                    conn.execute(f"ALTER SYSTEM SET {k} = '{v}'")
            pg.stop()
            pg.start()
        t0 = time.perf_counter()
        loaded, fill, keys = _prepare(pg, n_stores, days, clients, fresh, refill)
        print(f"prepared in {time.perf_counter() - t0:.0f} s: {loaded}", flush=True)
        url = pg.url.rsplit("/", 1)[0] + "/hub"
        dsn = _pg_dsn(pg, "hub")
        probe = None
        if probe_minutes:
            first = int(T0.timestamp()) + days * 86_400  # just after the loaded days
            series = [(c, t, m, k) for c, t, m, k in SERIES]
            probe = ingest_probe(url, dsn, store_ids(n_stores), first, probe_minutes, series)
            print(f"ingest probe: {probe.batches} batches, p50 "
                  f"{probe.pct(probe.batch_ms, 50):.2f} ms, hourly upsert p50 "
                  f"{probe.pct(probe.hourly_ms, 50):.2f} ms", flush=True)  # fmt: skip
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else "?"
        stores = [(sid, ZONES[i % len(ZONES)]) for i, sid in enumerate(store_ids(n_stores))]
        rng = random.Random(42)
        engine = create_hub_engine(url, pool_size=1)
        pools: list[list[Sample]] = []
        try:
            for _, path, make in ROUTES:
                # a ranking reads every store's two weeks: fewer, each is a long statement
                n = max(2, n_samples // 10) if path == "/analytics/ranking" else n_samples
                pool = [Sample(path, make(rng, stores, days)) for _ in range(n)]
                capture_sql(engine, pool)
                pools.append(pool)
        finally:
            engine.dispose()
        hub = HubProcess(workdir.parent / f"{workdir.name}-hub")
        env = {"RETAIL_HUB_RATE_LIMIT_PER_MINUTE": "0", "RETAIL_HUB_RUN_JOBS": "false",
               "RETAIL_HUB_LOG_LEVEL": "WARNING"}  # fmt: skip
        hub.start(url, env=env, device_auth="open", timeout_s=120,
                  args=["--workers", str(workers)])  # fmt: skip
        results = []
        assert hub.proc is not None
        postmaster = int((workdir / "pgdata" / "postmaster.pid").read_text().split()[0])
        meter = CpuMeter([os.getpid(), hub.proc.pid], postmaster)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for (name, path, _), pool in zip(ROUTES, pools, strict=True):
                    checked, rows = check_answers(
                        hub.url, keys[0], conn, pool[: min(10, len(pool) // 2 or 1)]
                    )
                    print(f"{name}: {checked} answers equal the direct SQL's", flush=True)
                    wait_idle(dsn)
                    m0 = meter.sample()
                    api = api_phase(hub.url, keys, pool, duration_s)
                    api.others_cores = meter.others(m0)
                    wait_idle(dsn)
                    m0 = meter.sample()
                    sql = sql_phase(dsn, clients, pool, duration_s)
                    sql.others_cores = meter.others(m0)
                    results.append(RouteResult(name, path, api, sql, checked, rows))
                    print(
                        f"  api p95 {api.fmt(95)} ms ({api.rate:.1f}/s, {api.errors} errors), "
                        f"sql p95 {sql.fmt(95)} ms ({sql.rate:.1f}/s), other processes "
                        f"{api.others_cores:.2f}/{sql.others_cores:.2f} cores",
                        flush=True,
                    )
        finally:
            if hub.proc is not None and hub.proc.poll() is not None:  # died under the run
                print(f"hub exited with {hub.proc.returncode} before the end:\n{hub.log()[-3000:]}",
                      file=sys.stderr)  # fmt: skip
            hub.stop()
    finally:
        pg.stop()
        if pgdata is None:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(workdir.parent / f"{workdir.name}-hub", ignore_errors=True)
    return Report(n_stores, days, clients, duration_s, loaded, results, revision, workers, fill,
                  probe)  # fmt: skip


class AnswerMismatch(AssertionError):
    """The API and the direct SQL disagree on a sampled query."""


def check_answers(base: str, key: str, conn: psycopg.Connection[Any],
                  samples: list[Sample]) -> tuple[int, float]:  # fmt: skip
    """Compare each sample's API answer with its direct SQL; (answers checked, mean rows the
    aggregate statements returned). Raises AnswerMismatch on any difference."""
    rows_total = 0
    with httpx.Client(base_url=base + "/api/v1", timeout=120,
                      headers={"Authorization": f"Bearer {key}"}) as client:  # fmt: skip
        for s in samples:
            resp = client.get(s.path, params=s.params)
            if resp.status_code != 200:
                raise AnswerMismatch(f"{s.path} {s.params}: HTTP {resp.status_code} {resp.text}")
            rows = run_sql(conn, s)
            rows_total += sum(len(r) for r in rows[1:])
            api, sql = api_facts(s.path, s.params, resp.json()), sql_facts(s.path, rows)
            if not sql:
                raise AnswerMismatch(f"{s.path} {s.params}: the direct SQL found no data")
            bad = facts_differ(s.path, api, sql)
            if bad:
                raise AnswerMismatch(f"{s.path} {s.params}:\n" + "\n".join(bad))
    return len(samples), rows_total / max(1, len(samples))


def report_text(rep: Report) -> str:
    """The Markdown table and notes of a run."""
    lines = []
    if rep.loaded is not None:
        ld = rep.loaded
        lines.append(
            f"Data: {rep.stores} stores x {rep.days} days, 2 cameras each, "
            f"{len(SERIES)} minute series per store (zeros at night), 24 h a day: "
            f"{ld.rollups:,} rollups + {ld.heatmaps:,} hourly {GRID_W}x{GRID_H} heatmaps, "
            f"loaded with COPY in {ld.copy_s:.0f} s ({ld.rollups / ld.copy_s:,.0f} rollups/s, "
            f"generation included), indexes rebuilt in {ld.index_s:.0f} s, VACUUM ANALYZE "
            f"{ld.vacuum_s:.0f} s; tables {ld.table_mb:,.0f} MB + indexes {ld.index_mb:,.0f} MB."
        )
    if rep.fill is not None:
        f = rep.fill
        lines.append(
            f"Hourly sums: `retail-hub migrate` (revision {HOURLY_REVISION}) filled "
            f"{f.hourly_rows:,} hourly rows from {f.minute_rows:,} minute rows in "
            f"{f.seconds:.0f} s (the migration, as production upgrading would run it)."
        )
    if rep.probe is not None:
        pr = rep.probe
        lines.append(
            f"Ingest probe (the hub's ingest service, one transaction per batch of "
            f"{pr.rollups_per_batch} minute rollups, {pr.batches} batches): p50 "
            f"{pr.pct(pr.batch_ms, 50):.2f} ms, p95 {pr.pct(pr.batch_ms, 95):.2f} ms a batch, "
            f"of which the hourly upsert p50 {pr.pct(pr.hourly_ms, 50):.2f} ms, p95 "
            f"{pr.pct(pr.hourly_ms, 95):.2f} ms; hourly rows checked against the minute rows."
        )
    if lines:
        lines.append("")
    procs = (
        "One `retail-hub serve` process"
        if rep.workers == 1
        else (f"`retail-hub serve --workers {rep.workers}`")
    )
    lines += [
        f"Schema revision {rep.revision}. {procs} (uvicorn, {rep.workers} worker"
        f"{'s' if rep.workers > 1 else ''}), {rep.clients} closed-loop clients, "
        f"{rep.duration_s:.0f} s per route and per phase; peer "
        f"= the service's own SQL over psycopg from {rep.clients} threads, right after. "
        "Latency in ms; ratio = API p95 / SQL p95; load = 1-min load average at phase end "
        "(it counts this run's own waiting clients and backends); others' cores = CPU used "
        "during the phase by processes outside this run (hub, PostgreSQL and the clients "
        f"excluded), of the machine's {os.cpu_count()}.",
        "",
        "| query | API p50 | API p95 | API p99 | API req/s | SQL p50 | SQL p95 | SQL p99 | "
        "SQL q/s | ratio p95 | rows/call | load API/SQL | others' cores API/SQL | "
        "answers checked |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rep.routes:
        a, s = r.api, r.sql
        lines.append(
            f"| {r.name} | {a.fmt(50)} | {a.fmt(95)} | {a.fmt(99)} | {a.rate:.1f} | "
            f"{s.fmt(50)} | {s.fmt(95)} | {s.fmt(99)} | {s.rate:.1f} | "
            f"{a.pct(95) / s.pct(95):.2f} | {r.rows_per_call:,.0f} | "
            f"{a.load_avg:.1f}/{s.load_avg:.1f} | {a.others_cores:.2f}/{s.others_cores:.2f} | "
            f"{r.checked} |"
        )
    errors = sum(r.api.errors for r in rep.routes)
    cut = sum(len(r.api.unfinished) + len(r.sql.unfinished) for r in rep.routes)
    lines += [
        "",
        f"API errors (non-200): {errors}. Calls cancelled {GRACE_S:.0f} s after their phase "
        f"ended: {cut} (counted at the time they had run: '>=' marks such lower bounds). "
        "Target p95 <= 50 ms (original design 150 ms).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Report:
    """Parse arguments, run, print, append to BENCHMARKS.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per route and phase")
    ap.add_argument("--samples", type=int, default=30, help="sampled queries per route")
    ap.add_argument("--quick", action="store_true", help="10 stores x 7 days, 10 clients, 10 s")
    ap.add_argument("--keep-pgdata", type=Path, help="load once into this folder, reuse after")
    ap.add_argument("--workers", type=int, default=1, help="retail-hub serve --workers N")
    ap.add_argument(
        "--refill-hourly",
        action="store_true",
        help="on a reused database, drop and fill the hourly sums again (timed)",
    )
    ap.add_argument(
        "--probe-minutes",
        type=int,
        default=10,
        help="minutes of every store the ingest probe sends (0: no probe)",
    )
    ap.add_argument("--no-append", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.stores, args.days, args.clients, args.duration, args.samples = 10, 7, 10, 10.0, 20
    rep = run(args.stores, args.days, args.clients, args.duration, args.samples, args.keep_pgdata,
              args.workers, args.refill_hourly, args.probe_minutes)  # fmt: skip
    body = report_text(rep)
    print(body)
    if not args.no_append:
        title = (
            f"Hub analytics API at fleet scale vs direct SQL (PostgreSQL, schema {rep.revision})"
        )
        append_section(title, body)
    return rep


if __name__ == "__main__":
    main()
