"""A store's local calendar: time buckets (minute, hour, day, week) as UTC instants, and the SQL
that files a rollup's UTC ``bucket_start`` into them. Pure: no clock, no database connection.

Rollups are stored per UTC minute (UNIX seconds). A day bucket starts at the store's local
midnight and a week at local Monday midnight, so on DST change days a day lasts 23 or 25 hours.
An hour bucket starts on a local full hour (half past the UTC hour in Asia/Kolkata), and the
hour that repeats when clocks go back is two buckets.

How: a zone's UTC offset is constant between transitions. ``utc_offsets`` finds the transitions
inside the queried range (from the IANA database, through ``zoneinfo``), and ``bucket_key_sql``
turns them into one ``CASE`` expression, so SQL files each rollup by integer arithmetic on its
own offset (``wall = ts + offset(ts)``): day and week keys are the local midnight in wall-clock
seconds, minute and hour keys the bucket's UTC start. The SQL is the same on SQLite and
PostgreSQL and uses neither database's time-zone support, so both give the same answers whatever
tz data the database server carries. ``local_buckets`` lists the same buckets in Python with
their key, local start and end.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Integer, bindparam, case, literal


class BucketSize(StrEnum):
    """Width of an analytics bucket in the store's local calendar."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"  # local midnight to local midnight (23, 24 or 25 hours)
    WEEK = "week"  # local Monday midnight to the next


NOMINAL_WIDTH_S: dict[BucketSize, int] = {
    BucketSize.MINUTE: 60,
    BucketSize.HOUR: 3600,
    BucketSize.DAY: 86_400,
    BucketSize.WEEK: 7 * 86_400,
}
MAX_BUCKETS = 10_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

_DAY_S = 86_400
_WEEK_ANCHOR_S = 4 * _DAY_S  # 1970-01-05, a Monday, in wall-clock seconds
_EPOCH_DATE = date(1970, 1, 1)
_SCAN_STEP_S = _DAY_S  # zones change offset at most once a day (in fact a few times a year)


class RangeError(ValueError):
    """A time range the API refuses; ``field`` is the query parameter to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class OffsetSpan:
    """The zone's UTC offset (seconds east of UTC) from ``since`` (UNIX s) to the next span."""

    since: int
    offset_s: int


@dataclass(frozen=True)
class LocalBucket:
    """One bucket: ``start``/``end`` in the store's zone; ``key`` is what ``bucket_key_sql``
    yields for every timestamp inside it."""

    key: int
    start: datetime
    end: datetime

    @property
    def start_ts(self) -> int:
        """Start, UNIX seconds."""
        return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        """End (exclusive), UNIX seconds."""
        return int(self.end.timestamp())


def range_seconds(start: datetime, end: datetime) -> tuple[int, int]:
    """``[start, end)`` as whole UNIX seconds that select the same integer timestamps."""
    return math.ceil(start.timestamp()), math.ceil(end.timestamp())


def check_instant(name: str, value: datetime) -> None:
    """Refuse a naive instant or one outside 2000-2100 (UTC).

    Raises:
        RangeError: naming the parameter ``name`` and what to change.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise RangeError(
            name, f"{name} {value.isoformat()} needs a UTC offset, e.g. 2026-03-29T00:00+01:00"
        )
    if not EARLIEST <= value <= LATEST:
        raise RangeError(name, f"{name} must lie between 2000-01-01 and 2100-01-01 (UTC)")


def check_range(start: datetime, end: datetime, size: BucketSize | None = None) -> None:
    """Refuse a range that is naive, empty, outside 2000-2100, or (with ``size``) holds more
    than ``MAX_BUCKETS`` buckets.

    Raises:
        RangeError: naming the parameter and what to change.
    """
    check_instant("start", start)
    check_instant("end", end)
    if end <= start:
        raise RangeError("end", f"end {end.isoformat()} must be after start {start.isoformat()}")
    if size is not None:
        estimate = math.ceil((end - start).total_seconds() / NOMINAL_WIDTH_S[size]) + 1
        if estimate > MAX_BUCKETS + 2:  # +2: the partial buckets at both ends
            raise RangeError(
                "bucket",
                f"the range spans about {estimate} {size.value} buckets, more than "
                f"{MAX_BUCKETS}: use a coarser bucket or a shorter range",
            )


def utc_offset(zone: ZoneInfo, ts: int) -> int:
    """The zone's UTC offset at UNIX second ``ts``, seconds east of UTC."""
    off = datetime.fromtimestamp(ts, zone).utcoffset()
    assert off is not None
    return int(off.total_seconds())


def utc_offsets(zone: ZoneInfo, start_ts: int, end_ts: int) -> list[OffsetSpan]:
    """The offsets in force over ``[start_ts, end_ts)``: one span per transition, the first
    from ``start_ts``. Found by sampling once a day and bisecting to the second."""
    spans = [OffsetSpan(start_ts, utc_offset(zone, start_ts))]
    t = start_ts
    while t < end_ts - 1:
        nxt = min(t + _SCAN_STEP_S, end_ts - 1)
        current = spans[-1].offset_s
        if utc_offset(zone, nxt) != current:
            lo, hi = t, nxt  # offset(lo) == current != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if utc_offset(zone, mid) == current:
                    lo = mid
                else:
                    hi = mid
            spans.append(OffsetSpan(hi, utc_offset(zone, hi)))
        t = nxt
    return spans


def _key_from_wall(ts: int, offset_s: int, size: BucketSize) -> int:
    w = NOMINAL_WIDTH_S[size]
    wall = ts + offset_s
    if size in (BucketSize.MINUTE, BucketSize.HOUR):
        return wall // w * w - offset_s
    if size is BucketSize.DAY:
        return wall // w * w
    return (wall - _WEEK_ANCHOR_S) // w * w + _WEEK_ANCHOR_S


def bucket_key(ts: int, spans: Sequence[OffsetSpan], size: BucketSize) -> int:
    """The key of the bucket holding UNIX second ``ts`` (what ``bucket_key_sql`` computes)."""
    i = bisect.bisect_right([s.since for s in spans], ts) - 1
    return _key_from_wall(ts, spans[max(i, 0)].offset_s, size)


def bucket_key_sql(
    ts: ColumnElement[Any], spans: Sequence[OffsetSpan], size: BucketSize
) -> ColumnElement[Any]:
    """SQL for ``bucket_key(ts)``: integer arithmetic on a ``CASE`` over the offset spans.

    Integer division truncates on both SQLite and PostgreSQL; ``check_range`` keeps every
    timestamp after 2000, so the operands are positive and truncation is floor.
    """
    offsets = [literal(s.offset_s) for s in spans]
    return _key_sql(ts, offsets, [literal(s.since) for s in spans[1:]], size)


def bucket_key_template(
    ts: ColumnElement[Any], n_spans: int, size: BucketSize, prefix: str
) -> ColumnElement[Any]:
    """``bucket_key_sql`` for ``n_spans`` offset spans given later as named parameters
    (``bucket_key_params``), so a statement is built once per shape and run many times."""
    offsets = [bindparam(f"{prefix}_off{i}", type_=Integer) for i in range(n_spans)]
    since = [bindparam(f"{prefix}_since{i}", type_=BigInteger) for i in range(1, n_spans)]
    return _key_sql(ts, offsets, since, size)


def bucket_key_params(spans: Sequence[OffsetSpan], prefix: str) -> dict[str, int]:
    """The parameters of ``bucket_key_template(ts, len(spans), size, prefix)`` for ``spans``."""
    out = {f"{prefix}_off{i}": s.offset_s for i, s in enumerate(spans)}
    out.update({f"{prefix}_since{i}": spans[i].since for i in range(1, len(spans))})
    return out


def _key_sql(
    ts: ColumnElement[Any],
    offsets: Sequence[ColumnElement[Any]],
    since: Sequence[ColumnElement[Any]],
    size: BucketSize,
) -> ColumnElement[Any]:
    """The key SQL from each span's offset and each transition's instant (``since[i - 1]``
    starts span ``i``)."""
    if len(offsets) == 1:
        off = offsets[0]
    else:
        whens = [(ts < since[i], offsets[i]) for i in range(len(offsets) - 1)]
        off = case(*whens, else_=offsets[-1])
    w = NOMINAL_WIDTH_S[size]
    if size in (BucketSize.MINUTE, BucketSize.HOUR):
        return (ts + off) // w * w - off
    if size is BucketSize.DAY:
        return (ts + off) // w * w
    return (ts + off - _WEEK_ANCHOR_S) // w * w + _WEEK_ANCHOR_S


def edges_on_whole_hours(spans: Sequence[OffsetSpan], size: BucketSize) -> bool:
    """Whether every bucket edge of ``size`` under ``spans`` falls on a whole UTC hour, so a
    whole UTC hour never straddles two buckets: hour, day and week buckets in a zone whose
    offsets are whole hours and whose transitions fall on whole hours (not Asia/Kolkata's
    +05:30, Asia/Kathmandu's +05:45 or Lord Howe's half-hour DST)."""
    if size is BucketSize.MINUTE:
        return False
    return all(s.offset_s % 3600 == 0 for s in spans) and all(
        s.since % 3600 == 0 for s in spans[1:]
    )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of local date ``day`` (01:00 where clocks skip midnight)."""
    naive_first = datetime.combine(day, time(0), tzinfo=zone)  # fold=0: the earlier reading
    return datetime.fromtimestamp(naive_first.timestamp(), zone)


def local_buckets(
    zone: ZoneInfo, start: datetime, end: datetime, size: BucketSize
) -> list[LocalBucket]:
    """Every bucket of ``size`` that overlaps ``[start, end)`` in ``zone``'s calendar, in time
    order. The first and last may reach outside the range. Call ``check_range`` first."""
    start_ts, end_ts = range_seconds(start, end)
    if size in (BucketSize.MINUTE, BucketSize.HOUR):
        w = NOMINAL_WIDTH_S[size]
        spans = utc_offsets(zone, start_ts, end_ts)
        keys: set[int] = set()
        for i, span in enumerate(spans):
            lo = max(span.since, start_ts)
            hi = spans[i + 1].since if i + 1 < len(spans) else end_ts
            k = _key_from_wall(lo, span.offset_s, size)
            while k < hi:
                keys.add(k)
                k += w
        return [
            LocalBucket(k, datetime.fromtimestamp(k, zone), datetime.fromtimestamp(k + w, zone))
            for k in sorted(keys)
        ]
    step = 7 if size is BucketSize.WEEK else 1
    first = datetime.fromtimestamp(start_ts, zone).date()
    last = datetime.fromtimestamp(end_ts - 1, zone).date()
    if size is BucketSize.WEEK:
        first -= timedelta(days=first.weekday())
    out = []
    day = first
    while day <= last:
        nxt = day + timedelta(days=step)
        key = (day - _EPOCH_DATE).days * _DAY_S
        out.append(LocalBucket(key, local_midnight(day, zone), local_midnight(nxt, zone)))
        day = nxt
    return out
