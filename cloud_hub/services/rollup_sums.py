"""Re-aggregate stored rollups (per-minute buckets) into coarser groups in one SQL statement.

Counters add their counts; samples add counts and sums and take min and max, so the mean of a
group is ``sum / count`` over every sample in it (not a mean of means). The grouping key is an
SQL expression (a local-calendar bucket key from ``calendar.bucket_key_sql``, or "this period or
the previous one" for rankings); it is computed in a subquery so both SQLite and PostgreSQL
group by the same value however the expression binds its parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Connection

from cloud_hub.models import ROLLUPS


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


def sum_rollups(
    conn: Connection,
    where: Sequence[ColumnElement[bool]],
    key: ColumnElement[Any],
    by: Sequence[str],
) -> dict[tuple[Any, ...], Aggregate]:
    """Aggregates of the rollups matching ``where``, grouped by ``(key, *by)``.

    ``by`` names ``rollups`` columns (``camera_id``, ``target_id``, ``metric``, ``store_id``);
    the result maps ``(key value, *column values)`` to the group's aggregate.
    """
    r = ROLLUPS.c
    inner = (
        select(key.label("k"), *[r[name] for name in by], r.count, r.sum, r.min, r.max)
        .where(*where)
        .subquery()
    )
    groups = [inner.c.k, *[inner.c[name] for name in by]]
    q = select(
        *groups,
        func.sum(inner.c.count),
        func.sum(inner.c.sum),
        func.min(inner.c.min),
        func.max(inner.c.max),
    ).group_by(*groups)
    out: dict[tuple[Any, ...], Aggregate] = {}
    n = len(groups)
    for row in conn.execute(q):
        count, total, low, high = row[n:]
        out[tuple(row[:n])] = Aggregate(
            count=int(count),  # PostgreSQL sums BIGINT as NUMERIC
            sum=None if total is None else float(total),
            min=None if low is None else float(low),
            max=None if high is None else float(high),
        )
    return out
