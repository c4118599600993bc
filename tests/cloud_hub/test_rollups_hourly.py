"""Hourly rollup sums (``rollups_hourly``) against the minute rollups they summarise, on SQLite and
PostgreSQL: kept equal by ingest whatever arrives (partial re-sends, repeats, conflicting
partials, 5-minute rollups), filled by migration 0012 from rows stored before it, pruned with
the minute rows; and the readers' hourly path answers what the minute path answers."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, func, select, text

from cloud_hub.core.config import HubSettings
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.models import (
    DEAD_LETTERS,
    DEVICES,
    RECEIVED,
    ROLLUPS,
    ROLLUPS_HOURLY,
    STORES,
)
from cloud_hub.services.analytics import SeriesQuery, footfall_series
from cloud_hub.services.buckets import rollup_row
from cloud_hub.services.calendar import (
    BucketSize,
    edges_on_whole_hours,
    utc_offsets,
)
from cloud_hub.services.ingest import ingest_batch
from cloud_hub.services.rollup_sums import (
    Aggregate,
    CalendarKey,
    FixedKey,
    RollupScope,
    TimeSpan,
    sum_spans,
)
from cloud_hub.services.rollups_hourly import prune_rollups
from cloud_hub.services.sql import insert_rows
from cloud_hub.services.stores import StoreUpdate, get_store, put_store
from cloud_hub.workers.jobs import retention
from common.sync import SyncRecord, TelemetryBatch
from common.telemetry import Rollup
from tests.cloud_hub.batches import numbered

# 2026-03-29 00:00 UTC: Paris springs forward at 01:00 UTC; 2026-10-31: New York falls back
# on 2026-11-01 at 06:00 UTC, inside the three days drawn from it
BASES = [1_774_742_400, 1_793_404_800]
SPAN_S = 3 * 86_400
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"]
METRICS = [("line_in", "counter"), ("dwell_s", "samples")]
value = st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def partial(draw: st.DrawFn, base: int, store: str) -> Rollup:
    """A minute (or 5-minute) rollup inside the three days from ``base``."""
    camera = draw(st.sampled_from(["c1", "c2"]))
    metric, kind = draw(st.sampled_from(METRICS))
    interval = draw(st.sampled_from([60, 60, 300]))
    start = base + interval * draw(st.integers(0, SPAN_S // interval - 1))
    return _rollup(draw, store, camera, metric, kind, interval, start)


def _rollup(
    draw: st.DrawFn, store: str, camera: str, metric: str, kind: str, interval: int, start: int
) -> Rollup:
    fields: dict[str, Any] = {
        "store_id": store, "camera_id": camera, "target_id": f"{camera}-zone", "metric": metric,
        "bucket_start": start, "interval_s": interval, "kind": kind,
    }  # fmt: skip
    if kind == "counter":
        return Rollup(**fields, count=draw(st.integers(0, 40)))
    values = draw(st.lists(value, min_size=1, max_size=4))
    return Rollup(**fields, count=len(values), sum=sum(values), min=min(values), max=max(values))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[int, list[TelemetryBatch]]:
    """(base, batches as delivered): per store one device's partials, some re-sending an
    earlier key (merged), some conflicting with it (other kind or interval: dead-lettered),
    cut into batches, with repeated batches, in any order."""
    base = draw(st.sampled_from(BASES))
    sent: list[TelemetryBatch] = []
    for store in ("s1", "s2"):
        parts: list[Rollup] = []
        for _ in range(draw(st.integers(1, 25))):
            if parts and draw(st.integers(0, 3)) == 0:  # another partial of an earlier key
                old = draw(st.sampled_from(parts))
                kind, interval = old.kind.value, old.interval_s
                if draw(st.integers(0, 4)) == 0:  # a conflicting one: other kind or interval
                    if interval == 300 and draw(st.booleans()):
                        interval = 60
                    else:
                        kind = "samples" if kind == "counter" else "counter"
                parts.append(
                    _rollup(
                        draw, store, old.camera_id, old.metric, kind, interval, old.bucket_start
                    )
                )
            else:
                parts.append(draw(partial(base, store)))
        recs = numbered(list(parts), first_seq=1)
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(recs) - 1)), max_size=3)))
        bounds = sorted({0, *[c for c in cuts if c < len(recs)], len(recs)})
        sent += [_batch(recs[a:b], store) for a, b in itertools.pairwise(bounds)]
    repeats = draw(st.lists(st.sampled_from(sent), max_size=3))
    return base, draw(st.permutations(sent + repeats))


_ids = itertools.count()


def _batch(records: list[SyncRecord], store: str) -> TelemetryBatch:
    return TelemetryBatch(
        batch_id=f"hb{next(_ids)}", store_id=store, device_id=f"{store}-d",
        sent_at=float(BASES[0]), records=records,
    )  # fmt: skip


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (ROLLUPS, ROLLUPS_HOURLY, RECEIVED, DEAD_LETTERS, DEVICES, STORES):
            conn.execute(delete(table))


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _close(a: Aggregate | None, b: Aggregate | None) -> bool:
    if a is None or b is None:
        return a == b
    pairs = [(a.count, b.count), (a.sum, b.sum), (a.min, b.min), (a.max, b.max)]
    return all(
        x == y or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9))
        for x, y in pairs
    )


def assert_hourly_equals_minutes(engine: Engine) -> int:
    """``rollups_hourly`` holds exactly the per-hour merge of ``rollups``; the hours checked."""
    r = ROLLUPS.c
    hour = r.bucket_start - r.bucket_start % 3600
    keys = [r.store_id, r.metric, hour, r.camera_id, r.target_id]
    with engine.connect() as conn:
        sums = select(*keys, func.sum(r.count), func.sum(r.sum), func.min(r.min), func.max(r.max))
        want = {
            tuple(row[:5]): Aggregate(int(row[5]), *[_float(v) for v in row[6:]])
            for row in conn.execute(sums.group_by(*keys))
        }
        got = {
            (
                m["store_id"],
                m["metric"],
                m["hour_start"],
                m["camera_id"],
                m["target_id"],
            ): Aggregate(m["count"], m["sum"], m["min"], m["max"])
            for m in conn.execute(select(ROLLUPS_HOURLY)).mappings()
        }
    assert got.keys() == want.keys()
    bad = [k for k in want if not _close(got[k], want[k])]
    assert not bad, [(k, got[k], want[k]) for k in bad[:3]]
    return len(got)


def _both_paths(engine: Engine, scope: RollupScope, spans: list[TimeSpan], hourly: bool) -> None:
    by = ("store_id", "camera_id", "target_id", "metric")
    with engine.connect() as conn:
        fast = sum_spans(conn, scope, spans, by, hourly=hourly)
        slow = sum_spans(conn, scope, spans, by, hourly=False)
    assert fast.keys() == slow.keys()
    bad = [k for k in slow if not _close(fast[k], slow[k])]
    assert not bad, [(k, fast[k], slow[k]) for k in bad[:3]]


def _property(engine: Engine) -> None:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        deliveries(),
        st.sampled_from(ZONES),
        st.sampled_from([BucketSize.HOUR, BucketSize.DAY, BucketSize.WEEK]),
        st.lists(st.integers(-3600, SPAN_S + 3600), min_size=4, max_size=4),
    )
    def check(
        case: tuple[int, list[TelemetryBatch]], tz: str, size: BucketSize, cuts: list[int]
    ) -> None:
        base, delivered = case
        _reset(engine)
        with engine.begin() as conn:  # one commit: SQLite syncs each (the rules are the same)
            for sent in delivered:
                ingest_batch(conn, sent, float(base))
        assert_hourly_equals_minutes(engine)

        scope = RollupScope(("s1", "s2"), ("line_in", "dwell_s"))
        lo, hi = sorted(base + c for c in cuts[:2])
        offsets = utc_offsets(ZoneInfo(tz), lo, hi + 1)
        series = TimeSpan(lo, hi, CalendarKey(tuple(offsets), size))
        _both_paths(engine, scope, [series], edges_on_whole_hours(offsets, size))
        # the ranking's form: two periods, one constant key each, any bounds
        a, b = sorted(base + c for c in cuts[2:])
        periods = [
            TimeSpan(lo, hi, FixedKey(1)),
            TimeSpan(min(a, lo), min(b, lo), FixedKey(0)),
        ]
        _both_paths(engine, RollupScope(("s1",), ("dwell_s",), "c1"), periods, True)

    check()


def test_hourly_sums_stay_equal_and_both_paths_agree(hub_db: Engine) -> None:
    """Random partials (re-sends, repeats, conflicts) ingested in random batches: the hourly
    table equals the minute rows' per-hour merge, and series and ranking sums read through
    the hourly path equal the minute path's to 1e-9 relative."""
    _property(hub_db)


def _capture(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_series_read_whole_hours_from_the_hourly_table_where_edges_allow(hub_db: Engine) -> None:
    """Day buckets in Paris read rollups_hourly (and the same numbers as the minute rows);
    hour buckets in Kolkata (+05:30) and minute buckets read only the minute rows."""
    t0 = 1_780_000_200  # 2026-05-28T20:30Z, a Thursday
    recs = numbered(
        [
            Rollup(store_id="s1", camera_id="c1", target_id="door", metric=m,
                   bucket_start=t0 + 60 * i, interval_s=60, kind="counter", count=i % 11)
            for i in range(0, 3 * 1440, 7) for m in ("line_in", "line_out")
        ]
    )  # fmt: skip
    with hub_db.begin() as conn:
        ingest_batch(conn, _batch(recs, "s1"), float(t0))
        put_store(conn, "s1", StoreUpdate(name="S1", timezone="Europe/Paris"), float(t0))
    seen = _capture(hub_db)

    def footfall(tz: str, size: BucketSize, start: str, end: str) -> list[tuple[int, int]]:
        with hub_db.begin() as conn:
            put_store(conn, "s1", StoreUpdate(name="S1", timezone=tz), float(t0))
            store = get_store(conn, "s1")
            assert store is not None
            seen.clear()
            q = SeriesQuery(
                store, datetime.fromisoformat(start), datetime.fromisoformat(end), size,
                None, None, 1000, 0,
            )  # fmt: skip
            return [(b.footfall_in, b.footfall_out) for b in footfall_series(conn, q).items]

    days = footfall(
        "Europe/Paris", BucketSize.DAY, "2026-05-29T00:00+02:00", "2026-05-31T00:00+02:00"
    )
    assert any("rollups_hourly" in s for s in seen)
    expected = [0, 0]
    for i in range(0, 3 * 1440, 7):
        ts = t0 + 60 * i
        day = datetime.fromtimestamp(ts, ZoneInfo("Europe/Paris")).date().isoformat()
        if day in ("2026-05-29", "2026-05-30"):
            expected[day == "2026-05-30"] += i % 11
    assert [d[0] for d in days] == expected and expected[0] > 0

    footfall("Asia/Kolkata", BucketSize.HOUR, "2026-05-29T00:00+05:30", "2026-05-30T00:00+05:30")
    assert seen and not any("rollups_hourly" in s for s in seen)
    footfall("UTC", BucketSize.MINUTE, "2026-05-29T00:00Z", "2026-05-29T02:00Z")
    assert seen and not any("rollups_hourly" in s for s in seen)


def test_migration_0012_fills_the_hourly_table_from_stored_rollups(pg_url: str) -> None:
    """Minute rollups stored at the revision before 0012 (no hourly table yet) are in
    rollups_hourly once migrated to 0012."""
    upgrade_database(pg_url, "0012-1")
    engine = create_hub_engine(pg_url)
    try:
        t0 = 1_780_000_200
        rows = [
            rollup_row(
                Rollup(store_id=s, camera_id="c1", target_id="z", metric="dwell_s",
                       bucket_start=t0 + 300 * i, interval_s=300, kind="samples",
                       count=2, sum=3.5 + i, min=1.5, max=2.0 + i),
                float(t0),
            )
            for i in range(40) for s in ("s1", "s2")
        ]  # fmt: skip
        with engine.begin() as conn:
            insert_rows(conn, ROLLUPS, rows)
        upgrade_database(pg_url)
        assert assert_hourly_equals_minutes(engine) == 2 * 4  # 40 x 5 min from 20:30 UTC: 4 hours
        with engine.connect() as conn:
            n = conn.execute(text("SELECT sum(count) FROM rollups_hourly")).scalar_one()
        assert n == 2 * 40 * 2
    finally:
        engine.dispose()


def test_retention_prunes_both_tables_at_a_whole_hour(hub_db: Engine) -> None:
    """Pruning at 10:20 keeps the 10:00 hour whole in both tables; older hours go from both."""
    t0 = 1_780_000_200 - 1_780_000_200 % 3600  # a whole hour
    recs = numbered(
        [
            Rollup(store_id="s1", camera_id="c1", target_id="door", metric="line_in",
                   bucket_start=t0 + 600 * i, interval_s=60, kind="counter", count=1)
            for i in range(18)
        ]
    )  # fmt: skip
    with hub_db.begin() as conn:
        ingest_batch(conn, _batch(recs, "s1"), float(t0))
        deleted = prune_rollups(conn, t0 + 3600 + 1200)
    assert deleted == (6, 1)  # the first hour's six minutes and its hourly row
    assert assert_hourly_equals_minutes(hub_db) == 2
    with hub_db.connect() as conn:
        first = conn.execute(select(func.min(ROLLUPS.c.bucket_start))).scalar_one()
    assert first == t0 + 3600
    assert datetime.fromtimestamp(first, UTC).minute == 0


def test_the_retention_job_prunes_rollups_only_when_configured(hub_db: Engine) -> None:
    """RETAIL_HUB_ROLLUP_RETENTION_DAYS 0 (the default) keeps every rollup; 1 deletes both
    tables' rows older than a day, whole hours at a time."""
    t0 = 1_780_000_200 - 1_780_000_200 % 3600
    recs = numbered(
        [
            Rollup(store_id="s1", camera_id="c1", target_id="door", metric="line_in",
                   bucket_start=t0 + 1800 * i, interval_s=60, kind="counter", count=1)
            for i in range(4)
        ]
    )  # fmt: skip
    with hub_db.begin() as conn:
        ingest_batch(conn, _batch(recs, "s1"), float(t0))
    url = hub_db.url.render_as_string(hide_password=False)
    now = t0 + 86_400 + 3600 + 60  # a day after 01:01 into the data
    retention(hub_db, HubSettings(database_url=url), now)
    assert assert_hourly_equals_minutes(hub_db) == 2
    retention(hub_db, HubSettings(database_url=url, rollup_retention_days=1), now)
    assert assert_hourly_equals_minutes(hub_db) == 1  # the first hour went from both tables
    with hub_db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ROLLUPS)).scalar_one() == 2
