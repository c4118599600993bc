"""The store's local calendar: bucket bounds on DST days, and SQL keys that match them."""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, insert, select

from cloud_hub.services.calendar import (
    MAX_BUCKETS,
    BucketSize,
    LocalBucket,
    RangeError,
    bucket_key,
    bucket_key_sql,
    check_range,
    local_buckets,
    utc_offsets,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
SANTIAGO = ZoneInfo("America/Santiago")  # clocks skip local midnight in September
ZONES = [PARIS, NEW_YORK, KOLKATA, SANTIAGO, ZoneInfo("UTC")]


def hours(b: LocalBucket) -> float:
    return (b.end_ts - b.start_ts) / 3600


@pytest.mark.parametrize(
    ("zone", "day", "length_h"),
    [
        (PARIS, datetime(2026, 3, 29), 23),
        (PARIS, datetime(2026, 10, 25), 25),
        (NEW_YORK, datetime(2026, 3, 8), 23),
        (NEW_YORK, datetime(2026, 11, 1), 25),
        (KOLKATA, datetime(2026, 10, 25), 24),
    ],
)
def test_a_day_bucket_runs_midnight_to_midnight_and_has_one_hour_bucket_per_hour(
    zone: ZoneInfo, day: datetime, length_h: int
) -> None:
    start = day.replace(tzinfo=zone)
    end = (day + timedelta(days=1)).replace(tzinfo=zone)
    (d,) = local_buckets(zone, start, end, BucketSize.DAY)
    assert (d.start, d.end) == (start, end)
    assert (d.start.hour, d.end.hour) == (0, 0) and hours(d) == length_h
    hourly = local_buckets(zone, start, end, BucketSize.HOUR)
    assert len(hourly) == length_h
    assert all(hours(h) == 1 for h in hourly)
    assert all(a.end == b.start for a, b in itertools.pairwise(hourly))
    # every hour bucket starts on a local full hour (half past the UTC hour in Kolkata)
    assert all((h.start.minute, h.start.second) == (0, 0) for h in hourly)


def test_the_repeated_autumn_hour_is_two_buckets() -> None:
    start = datetime(2026, 10, 25, 1, tzinfo=PARIS)
    end = datetime(2026, 10, 25, 4, tzinfo=PARIS)
    buckets = local_buckets(PARIS, start, end, BucketSize.HOUR)
    got = [(b.start.hour, b.start.utcoffset()) for b in buckets]
    two, one = timedelta(hours=2), timedelta(hours=1)
    assert got == [(1, two), (2, two), (2, one), (3, one)]


def test_weeks_start_on_local_monday_and_a_day_can_start_at_one_when_midnight_is_skipped() -> None:
    weeks = local_buckets(
        PARIS,
        datetime(2026, 3, 25, tzinfo=UTC),
        datetime(2026, 4, 2, tzinfo=UTC),
        BucketSize.WEEK,
    )
    assert [w.start.date().isoformat() for w in weeks] == ["2026-03-23", "2026-03-30"]
    assert all(w.start.weekday() == 0 and w.start.hour == 0 for w in weeks)
    assert hours(weeks[0]) == 7 * 24 - 1  # holds the spring change
    # Chile moves its clocks from 24:00 to 01:00 on the first Sunday of September 2026
    (day,) = local_buckets(
        SANTIAGO,
        datetime(2026, 9, 6, 12, tzinfo=SANTIAGO),
        datetime(2026, 9, 6, 13, tzinfo=SANTIAGO),
        BucketSize.DAY,
    )
    assert (day.start.hour, day.end.hour, hours(day)) == (1, 0, 23)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    size=st.sampled_from(list(BucketSize)),
    start=st.integers(1_772_000_000, 1_800_000_000),  # 2026-02 .. 2027-01
    length=st.integers(60, 40 * 86_400),
    probe=st.floats(0, 1),
)
def test_every_timestamp_has_the_key_of_the_bucket_that_holds_it(
    zone: ZoneInfo, size: BucketSize, start: int, length: int, probe: float
) -> None:
    if size is BucketSize.MINUTE:
        length = min(length, 5 * 86_400)
    s = datetime.fromtimestamp(start, UTC)
    e = datetime.fromtimestamp(start + length, UTC)
    buckets = local_buckets(zone, s, e, size)
    assert all(a.end == b.start for a, b in itertools.pairwise(buckets))
    assert buckets[0].start <= s < buckets[0].end and buckets[-1].start < e <= buckets[-1].end
    ts = start + int(probe * (length - 1))
    holder = next(b for b in buckets if b.start_ts <= ts < b.end_ts)
    assert bucket_key(ts, utc_offsets(zone, start, start + length), size) == holder.key


def test_the_sql_key_equals_the_python_key(hub_db: Engine) -> None:
    """The same CASE expression on SQLite and PostgreSQL files every minute of a DST week
    into the bucket Python lists."""
    t = Table("calendar_probe", MetaData(), Column("ts", BigInteger))
    start = datetime(2026, 10, 22, tzinfo=UTC)
    end = datetime(2026, 11, 4, tzinfo=UTC)
    minutes = list(range(int(start.timestamp()), int(end.timestamp()), 60))
    with hub_db.begin() as conn:
        t.create(conn)
        conn.execute(insert(t), [{"ts": m} for m in minutes])
        for zone in (PARIS, NEW_YORK, KOLKATA):
            spans = utc_offsets(zone, minutes[0], minutes[-1] + 1)
            for size in (BucketSize.HOUR, BucketSize.DAY, BucketSize.WEEK):
                buckets = local_buckets(zone, start, end, size)
                got = dict(conn.execute(select(t.c.ts, bucket_key_sql(t.c.ts, spans, size))).all())
                starts = [b.start_ts for b in buckets]
                want = {m: buckets[bisect.bisect_right(starts, m) - 1].key for m in minutes}
                assert got == want, (zone, size)
        t.drop(conn)


@pytest.mark.parametrize(
    ("start", "end", "size", "field", "says"),
    [
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), None, "start", "UTC offset"),
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), None, "end", "after"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), None, "end", "after"),
        (datetime(1999, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), None, "start", "2000"),
        (
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=MAX_BUCKETS + 5),
            BucketSize.MINUTE,
            "bucket",
            "coarser bucket",
        ),
    ],
)
def test_bad_ranges_name_the_parameter(
    start: datetime, end: datetime, size: BucketSize | None, field: str, says: str
) -> None:
    with pytest.raises(RangeError) as err:
        check_range(start, end, size)
    assert err.value.field == field and says in err.value.message
    check_range(
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=MAX_BUCKETS - 1),
        BucketSize.MINUTE,
    )  # just under the limit passes
