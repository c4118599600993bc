"""Re-aggregate stored rollups (per-minute buckets) into coarser groups in one SQL statement.

Counters add their counts; samples add counts and sums and take min and max, so the mean of a
group is ``sum / count`` over every sample in it (not a mean of means). The grouping key is an
SQL expression (a local-calendar bucket key from ``calendar``, or "this period or the previous
one" for rankings); it is computed in a subquery so both SQLite and PostgreSQL group by the same
value however the expression binds its parameters.

``sum_spans`` reads whole UTC hours from ``rollups_hourly`` (the same sums, kept by ingest:
``services.rollups_hourly``) where the caller says the key cannot change inside an hour, and
only the partial hours at a span's ends from the minute rows: a week of one store is some 170
hourly rows per series instead of 10,080 minute rows. The answer is the same either way (up to
float summation order; tests/cloud_hub/test_rollups_hourly.py). Its statement is built once per
shape (how many stores, metrics, offset spans; which table each range reads) with named
parameters and reused: building SQLAlchemy expressions cost more CPU than running them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    func,
    select,
    union_all,
)
from sqlalchemy.engine import Connection

from cloud_hub.models import ROLLUPS, ROLLUPS_HOURLY
from cloud_hub.services.calendar import (
    BucketSize,
    OffsetSpan,
    bucket_key_params,
    bucket_key_template,
)
from cloud_hub.services.rollups_hourly import hour_ceil, hour_floor


@dataclass(frozen=True)
class Aggregate:
    """A metric over a group of rollups: ``count`` events (counters) or samples with their
    ``sum``/``min``/``max`` (samples; None for counters). Units are the metric's."""

    count: int
    sum: float | None
    min: float | None
    max: float | None

    @property
    def mean(self) -> float | None:
        """sum / count; None for counters and empty groups."""
        if self.sum is None or self.count == 0:
            return None
        return self.sum / self.count


@dataclass(frozen=True)
class RollupScope:
    """Which rollups: of these stores and metrics, optionally one camera and one target."""

    store_ids: tuple[str, ...]
    metrics: tuple[str, ...]
    camera_id: str | None = None
    target_id: str | None = None


@dataclass(frozen=True)
class CalendarKey:
    """Group by local-calendar bucket: ``calendar.bucket_key`` under ``offsets``."""

    offsets: tuple[OffsetSpan, ...]
    size: BucketSize


@dataclass(frozen=True)
class FixedKey:
    """Group a whole span under one value (the ranking's "this period" flag)."""

    value: int


@dataclass(frozen=True)
class TimeSpan:
    """Rollups with ``bucket_start`` in ``[start, end)`` (UNIX s), grouped under ``key``."""

    start: int
    end: int
    key: CalendarKey | FixedKey


def sum_rollups(
    conn: Connection,
    where: Sequence[ColumnElement[bool]],
    key: ColumnElement[Any],
    by: Sequence[str],
) -> dict[tuple[Any, ...], Aggregate]:
    """Aggregates of the minute rollups matching ``where``, grouped by ``(key, *by)``.

    ``by`` names ``rollups`` columns (``camera_id``, ``target_id``, ``metric``, ``store_id``);
    the result maps ``(key value, *column values)`` to the group's aggregate.
    """
    r = ROLLUPS.c
    inner = select(key.label("k"), *[r[name] for name in by], r.count, r.sum, r.min, r.max)
    return _aggregates(conn, _grouped([inner.where(*where)], tuple(by)), {}, len(by) + 1)


def sum_spans(
    conn: Connection,
    scope: RollupScope,
    spans: Sequence[TimeSpan],
    by: Sequence[str],
    *,
    hourly: bool,
) -> dict[tuple[Any, ...], Aggregate]:
    """Aggregates of the rollups in ``scope`` over ``spans``, grouped by ``(key, *by)`` (as
    ``sum_rollups``), in one statement.

    ``hourly``: each span's key gives every second of a whole UTC hour inside the span the
    same value (bucket edges on whole hours; always true of a ``FixedKey``), so whole hours
    are read from ``rollups_hourly`` and only the partial hours at the span's ends from
    ``rollups``. Otherwise every row comes from ``rollups``.
    """
    params: dict[str, Any] = {f"st{i}": s for i, s in enumerate(scope.store_ids)}
    params.update({f"mt{i}": m for i, m in enumerate(scope.metrics)})
    if scope.camera_id is not None:
        params["cam"] = scope.camera_id
    if scope.target_id is not None:
        params["tgt"] = scope.target_id
    shapes = []
    for j, span in enumerate(spans):
        ranges = [("m", span.start, span.end)]
        whole = (hour_ceil(span.start), hour_floor(span.end))
        if hourly and whole[0] < whole[1]:
            ranges = [("m", span.start, whole[0]), ("h", *whole), ("m", whole[1], span.end)]
        ranges = [r for r in ranges if r[1] < r[2]]
        for i, (_, lo, hi) in enumerate(ranges):
            params[f"s{j}_lo{i}"], params[f"s{j}_hi{i}"] = lo, hi
        if isinstance(span.key, FixedKey):
            key_shape: tuple[Any, ...] = ("fixed",)
            params[f"s{j}_key"] = span.key.value
        else:
            key_shape = ("calendar", len(span.key.offsets), span.key.size)
            params.update(bucket_key_params(span.key.offsets, f"s{j}"))
        if ranges:
            shapes.append((j, key_shape, tuple(r[0] for r in ranges)))
    if not shapes:
        return {}
    scope_shape = (
        len(scope.store_ids),
        len(scope.metrics),
        scope.camera_id is not None,
        scope.target_id is not None,
    )
    stmt = _span_statement(scope_shape, tuple(shapes), tuple(by))
    return _aggregates(conn, stmt, params, len(by) + 1)


@lru_cache(maxsize=512)
def _span_statement(
    scope_shape: tuple[int, int, bool, bool],
    spans: tuple[tuple[int, tuple[Any, ...], tuple[str, ...]], ...],
    by: tuple[str, ...],
) -> Select[Any]:
    """The statement for one shape: per span ``(index, key shape, tables of its ranges)``."""
    parts = []
    for j, key_shape, tables in spans:
        for i, which in enumerate(tables):
            table, ts_name = (
                (ROLLUPS_HOURLY, "hour_start") if which == "h" else (ROLLUPS, "bucket_start")
            )
            c = table.c
            ts = c[ts_name]
            if key_shape[0] == "fixed":
                key: ColumnElement[Any] = bindparam(f"s{j}_key", type_=Integer)
            else:
                key = bucket_key_template(ts, key_shape[1], key_shape[2], f"s{j}")
            where = [
                *_scope_where(table, scope_shape),
                ts >= bindparam(f"s{j}_lo{i}", type_=BigInteger),
                ts < bindparam(f"s{j}_hi{i}", type_=BigInteger),
            ]
            cols = [c[name] for name in (*by, "count", "sum", "min", "max")]
            parts.append(select(key.label("k"), *cols).where(*where))
    return _grouped(parts, by)


def _scope_where(table: Table, shape: tuple[int, int, bool, bool]) -> list[ColumnElement[bool]]:
    """``store_id IN (:st0, ...) AND metric IN (:mt0, ...)`` [camera, target] on ``table``."""
    c = table.c
    n_stores, n_metrics, camera, target = shape

    def one_of(col: Any, prefix: str, n: int) -> ColumnElement[bool]:
        values = [bindparam(f"{prefix}{i}", type_=String) for i in range(n)]
        return col == values[0] if n == 1 else col.in_(values)

    out = [one_of(c.store_id, "st", n_stores), one_of(c.metric, "mt", n_metrics)]
    if camera:
        out.append(c.camera_id == bindparam("cam", type_=String))
    if target:
        out.append(c.target_id == bindparam("tgt", type_=String))
    return out


def _grouped(parts: Sequence[Select[Any]], by: tuple[str, ...]) -> Select[Any]:
    inner = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
    groups = [inner.c.k, *[inner.c[name] for name in by]]
    return select(
        *groups,
        func.sum(inner.c["count"]),
        func.sum(inner.c["sum"]),
        func.min(inner.c["min"]),
        func.max(inner.c["max"]),
    ).group_by(*groups)


def _aggregates(
    conn: Connection, stmt: Select[Any], params: dict[str, Any], n: int
) -> dict[tuple[Any, ...], Aggregate]:
    out: dict[tuple[Any, ...], Aggregate] = {}
    for row in conn.execute(stmt, params).all():  # one fetch: cheaper than row by row
        count, total, low, high = row[n:]
        out[tuple(row[:n])] = Aggregate(
            count=int(count),  # PostgreSQL sums BIGINT as NUMERIC
            sum=None if total is None else float(total),
            min=None if low is None else float(low),
            max=None if high is None else float(high),
        )
    return out
