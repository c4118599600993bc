"""Hourly sums of the minute rollups (``rollups_hourly``): kept equal to them by ingest, pruned
with them by retention. Readers choose between the two tables in ``services.rollup_sums``.

One row per ``(store, camera, target, metric, UTC hour)`` holds the merge of every ``rollups``
row whose ``bucket_start`` lies in that hour (a 5-minute rollup counts whole in the hour where it
starts, as the minute path files it): counts and sums add, min and max take the extreme (the
rules of ``services.merge``). Ingest adds each batch's applied partials to their hours in the
same transaction that writes the minute rows, so no reader ever sees one without the other; a
partial that is a duplicate or dead-lettered changes neither. Adding is order-free, so partial
re-sends, late data after an outage and concurrent workers all give the same hourly row as
``SUM``/``MIN``/``MAX`` over the minute rows (up to float summation order). See
docs/decisions/0013-hourly-rollups.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, cast, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import bindparam

from cloud_hub.models import ROLLUPS, ROLLUPS_HOURLY
from common.telemetry import Rollup

HOUR_S = 3600
_KEY = ("store_id", "camera_id", "target_id", "metric", "hour_start")
_VALUES = ("count", "sum", "min", "max")


def hour_floor(ts: int) -> int:
    """The UTC hour holding UNIX second ``ts`` (``ts >= 0``), as its first second."""
    return ts - ts % HOUR_S


def hour_ceil(ts: int) -> int:
    """The first whole UTC hour at or after UNIX second ``ts``."""
    return -(-ts // HOUR_S) * HOUR_S


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def _pick(f: Any, a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else f(a, b)


def hourly_deltas(rollups: Iterable[Rollup]) -> list[dict[str, Any]]:
    """What ``rollups`` (applied minute partials) add to their hours: one row per hourly key,
    sorted by key (the lock order), merged like SQL's ``SUM``/``MIN``/``MAX`` (None-aware)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rollups:
        key = (r.store_id, r.camera_id, r.target_id, r.metric, hour_floor(r.bucket_start))
        cur = out.get(key)
        if cur is None:
            out[key] = {
                **dict(zip(_KEY, key, strict=True)),
                "count": r.count,
                "sum": r.sum,
                "min": r.min,
                "max": r.max,
            }
            continue
        cur["count"] += r.count
        cur["sum"] = _add(cur["sum"], r.sum)
        cur["min"] = _pick(min, cur["min"], r.min)
        cur["max"] = _pick(max, cur["max"], r.max)
    return [out[k] for k in sorted(out)]


def add_to_hours(conn: Connection, rollups: Iterable[Rollup]) -> int:
    """Add applied minute partials to ``rollups_hourly`` (inside the caller's transaction, the
    one that wrote them to ``rollups``); returns the hourly rows touched.

    One statement: ``INSERT ... ON CONFLICT DO UPDATE`` adding to the stored row, so two
    workers adding to one hour serialise on its row lock; rows go in key order, the order every
    ingest transaction locks them in, so they cannot deadlock.
    """
    rows = hourly_deltas(rollups)
    if not rows:
        return 0
    stmt = _upsert(conn.dialect.name)
    if conn.dialect.name == "postgresql":
        conn.execute(stmt, {f"a_{n}": [r[n] for r in rows] for n in (*_KEY, *_VALUES)})
    else:
        conn.execute(stmt, rows)
    return len(rows)


@lru_cache(maxsize=2)
def _upsert(dialect: str) -> Any:
    """The adding upsert for ``dialect``, built once (building it cost more than running it).
    PostgreSQL takes one array per column through ``unnest`` (a constant statement psycopg
    prepares once); SQLite one row per parameter set."""
    h = ROLLUPS_HOURLY
    if dialect == "postgresql":
        names = [*_KEY, *_VALUES]
        src = select(
            *[func.unnest(cast(bindparam(f"a_{n}"), ARRAY(h.c[n].type))).label(n) for n in names]
        )
        pg = postgresql.insert(h).from_select(names, src)
        return pg.on_conflict_do_update(
            index_elements=list(h.primary_key.columns), set_=_merged(dialect, pg.excluded)
        )
    lite = sqlite.insert(h)
    return lite.on_conflict_do_update(
        index_elements=list(h.primary_key.columns), set_=_merged(dialect, lite.excluded)
    )


def _merged(dialect: str, ex: Any) -> dict[str, ColumnElement[Any]]:
    """SET clauses adding the incoming row ``ex`` to the stored one (NULL = nothing yet). On
    SQLite two-argument min/max are NULL when either is; the coalesce takes the other then."""
    c = ROLLUPS_HOURLY.c
    pg = dialect == "postgresql"
    low = func.least(c.min, ex.min) if pg else func.min(c.min, ex.min)
    high = func.greatest(c.max, ex.max) if pg else func.max(c.max, ex.max)
    return {
        "count": c.count + ex.count,
        "sum": func.coalesce(c.sum + ex.sum, c.sum, ex.sum),
        "min": func.coalesce(low, c.min, ex.min),
        "max": func.coalesce(high, c.max, ex.max),
    }


def prune_rollups(conn: Connection, before_ts: float) -> tuple[int, int]:
    """Delete minute rollups and their hourly sums older than ``before_ts`` (UNIX s), cut at
    the whole UTC hour at or before it so every hour kept keeps all its minutes (the two
    tables stay equal). Returns (minute rows, hourly rows) deleted."""
    cut = hour_floor(max(0, int(before_ts)))
    minutes = conn.execute(delete(ROLLUPS).where(ROLLUPS.c.bucket_start < cut)).rowcount
    hours = conn.execute(delete(ROLLUPS_HOURLY).where(ROLLUPS_HOURLY.c.hour_start < cut)).rowcount
    return int(minutes), int(hours)


def prune_expired_rollups(conn: Connection, keep_days: float, now: float) -> tuple[int, int]:
    """``prune_rollups`` of what is older than ``keep_days`` days at ``now`` (UNIX s); nothing
    when ``keep_days`` is 0 (kept for ever). Returns (minute rows, hourly rows) deleted."""
    if keep_days <= 0:
        return 0, 0
    return prune_rollups(conn, now - keep_days * 86_400.0)
