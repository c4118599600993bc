"""Rank stores by a metric over this period against the previous one, each store in its own
local calendar.

"This period" runs from the start of the local day, week (Monday) or month that holds ``at``
up to ``at``; "the previous one" from the start of the period before up to the same local wall
time into it (like for like: Wednesday 14:00 against last Wednesday 14:00; a month's cut-off
is clamped to the end of a shorter previous month). Pass ``at`` = a period's end to compare
whole periods. Stores sharing a time zone share the bounds and one SQL statement, which reads
the periods' whole UTC hours from the hourly sums (``rollup_sums.sum_spans``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from cloud_hub.services.calendar import local_midnight
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.rollup_sums import (
    Aggregate,
    FixedKey,
    RollupScope,
    TimeSpan,
    sum_spans,
)
from cloud_hub.services.stores import StoreOut
from common.telemetry import Metric


class RankingPeriod(StrEnum):
    """The calendar period compared with the one before it."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class RankingMetric(StrEnum):
    """What stores are ranked by: totals of counters or means of samples."""

    FOOTFALL_IN = "footfall_in"
    FOOTFALL_OUT = "footfall_out"
    VISITS = "visits"
    ENGAGED = "engaged"
    PASS_BYS = "pass_bys"
    SERVED = "served"
    MEAN_DWELL_S = "mean_dwell_s"
    MEAN_QUEUE_LENGTH = "mean_queue_length"
    MEAN_WAIT_S = "mean_wait_s"
    MEAN_OCCUPANCY = "mean_occupancy"


# ranking metric -> (rollup metric, value is the mean of samples rather than the count)
_SOURCE: dict[RankingMetric, tuple[Metric, bool]] = {
    RankingMetric.FOOTFALL_IN: (Metric.LINE_IN, False),
    RankingMetric.FOOTFALL_OUT: (Metric.LINE_OUT, False),
    RankingMetric.VISITS: (Metric.VISITS, False),
    RankingMetric.ENGAGED: (Metric.ENGAGED, False),
    RankingMetric.PASS_BYS: (Metric.PASS_BYS, False),
    RankingMetric.SERVED: (Metric.SERVED, False),
    RankingMetric.MEAN_DWELL_S: (Metric.DWELL_S, True),
    RankingMetric.MEAN_QUEUE_LENGTH: (Metric.QUEUE_LENGTH, True),
    RankingMetric.MEAN_WAIT_S: (Metric.QUEUE_WAIT_S, True),
    RankingMetric.MEAN_OCCUPANCY: (Metric.OCCUPANCY, True),
}


@dataclass(frozen=True)
class PeriodBounds:
    """This period ``[current_start, current_end)`` and the previous one, as local times."""

    current_start: datetime
    current_end: datetime
    previous_start: datetime
    previous_end: datetime


class StoreRank(BaseModel):
    """One store's value this period and the previous one. ``change_pct`` is
    ``(current - previous) / previous * 100``; null when either is missing or previous is 0."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(ge=1)
    store_id: str
    name: str
    timezone: str
    group: str | None
    current_start: datetime
    current_end: datetime
    previous_start: datetime
    previous_end: datetime
    current: float | None = Field(description="null: no data in this period")
    previous: float | None = Field(description="null: no data in the previous period")
    change_pct: float | None


class RankingPage(PageInfo):
    """Stores by ``current`` (highest first, stores without data last), ties by store id."""

    metric: RankingMetric
    period: RankingPeriod
    at: datetime
    items: list[StoreRank]


def _period_start(day: date, period: RankingPeriod) -> date:
    if period is RankingPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    if period is RankingPeriod.MONTH:
        return day.replace(day=1)
    return day


def _previous_start(start: date, period: RankingPeriod) -> date:
    if period is RankingPeriod.DAY:
        return start - timedelta(days=1)
    if period is RankingPeriod.WEEK:
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def _localize(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant a naive local wall time names (the earlier one when it repeats)."""
    return datetime.fromtimestamp(wall.replace(tzinfo=zone).timestamp(), zone)


def period_bounds(at: datetime, zone: ZoneInfo, period: RankingPeriod) -> PeriodBounds:
    """This period up to ``at`` and the previous one up to the same wall time, in ``zone``."""
    local = at.astimezone(zone)
    start = _period_start(local.date(), period)
    prev = _previous_start(start, period)
    elapsed = local.replace(tzinfo=None) - datetime.combine(start, time(0))
    prev_wall = min(datetime.combine(prev, time(0)) + elapsed, datetime.combine(start, time(0)))
    return PeriodBounds(
        current_start=local_midnight(start, zone),
        current_end=local,
        previous_start=local_midnight(prev, zone),
        previous_end=_localize(prev_wall, zone),
    )


def _ts(t: datetime) -> int:
    return int(t.timestamp())


def _value(agg: Aggregate | None, mean: bool) -> float | None:
    if agg is None:
        return None
    return agg.mean if mean else float(agg.count)


def _change(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous * 100.0


def rank_stores(
    conn: Connection,
    stores: Sequence[StoreOut],
    metric: RankingMetric,
    period: RankingPeriod,
    at: datetime,
    limit: int,
    offset: int,
) -> RankingPage:
    """Rank ``stores`` by ``metric`` this ``period`` (up to ``at``) against the previous one."""
    source, mean = _SOURCE[metric]
    by_zone: dict[str, list[StoreOut]] = defaultdict(list)
    for s in stores:
        by_zone[s.timezone].append(s)
    ranks: list[StoreRank] = []
    for tz, members in by_zone.items():
        b = period_bounds(at, ZoneInfo(tz), period)
        scope = RollupScope(tuple(s.store_id for s in members), (source.value,))
        # the key is constant over each period, so whole hours inside either come from the
        # hourly sums whatever the zone's offset; only the periods' partial end hours from
        # the minute rows
        periods = [
            TimeSpan(_ts(b.current_start), _ts(b.current_end), FixedKey(1)),
            TimeSpan(_ts(b.previous_start), _ts(b.previous_end), FixedKey(0)),
        ]
        sums = sum_spans(conn, scope, periods, by=("store_id",), hourly=True)
        for s in members:
            current = _value(sums.get((1, s.store_id)), mean)
            previous = _value(sums.get((0, s.store_id)), mean)
            ranks.append(
                StoreRank(
                    rank=1,
                    store_id=s.store_id,
                    name=s.name,
                    timezone=s.timezone,
                    group=s.group,
                    current_start=b.current_start,
                    current_end=b.current_end,
                    previous_start=b.previous_start,
                    previous_end=b.previous_end,
                    current=current,
                    previous=previous,
                    change_pct=_change(current, previous),
                )
            )
    ranks.sort(key=lambda x: (x.current is None, -(x.current or 0.0), x.store_id))
    for i, item in enumerate(ranks):
        item.rank = i + 1
    return RankingPage(
        metric=metric,
        period=period,
        at=at,
        items=ranks[offset : offset + limit],
        **page_info(len(ranks), limit, offset).model_dump(),
    )
