"""Store threshold rules: the hub watches a store-level metric over a sliding window of the
stored rollups (footfall in the last hour below 20, mean queue wait above 240 s, ...).

A rule is evaluated every ``threshold_interval_s`` on the window ``[end - window_s, end)``
where ``end`` is ``now - lag`` cut down to the minute (the edges' last minutes of rollups may
still be on their way). Counters (footfall, visits, served) add up every line or zone of the
store; a window without rollups counts 0. Means and maxima come from the samples; a window
without samples leaves the rule as it was (no evidence either way). With ``active_from_hour``
and ``active_to_hour`` a rule applies only between those local hours of the store (opening
hours): outside them it holds no alert. When the condition starts to hold the rule opens a
``store_threshold`` alert (one per breach); when it stops, the alert resolves itself.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import ALERT_THRESHOLDS, ROLLUPS, STORES
from cloud_hub.services.alerts import (
    AlertKind,
    NewAlert,
    live_alert_id,
    open_alert,
    resolve_alert,
)
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.rollup_sums import Aggregate, sum_rollups
from cloud_hub.services.sql import upsert
from common.telemetry import Metric

log = logging.getLogger(__name__)

Op = Literal[">", ">=", "<", "<="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class ThresholdMetric(StrEnum):
    """Store-level metrics a threshold rule can watch, over its window."""

    FOOTFALL_IN = "footfall_in"  # crossings in, every line (count)
    FOOTFALL_OUT = "footfall_out"
    VISITS = "visits"
    SERVED = "served"
    MEAN_QUEUE_LENGTH = "mean_queue_length"
    MAX_QUEUE_LENGTH = "max_queue_length"
    MEAN_WAIT_S = "mean_wait_s"  # the edges' estimated queue wait, seconds
    MAX_WAIT_S = "max_wait_s"
    MEAN_OCCUPANCY = "mean_occupancy"
    MAX_OCCUPANCY = "max_occupancy"


# threshold metric -> (rollup metric, how its aggregate becomes the value)
_SOURCE: dict[ThresholdMetric, tuple[Metric, Literal["count", "mean", "max"]]] = {
    ThresholdMetric.FOOTFALL_IN: (Metric.LINE_IN, "count"),
    ThresholdMetric.FOOTFALL_OUT: (Metric.LINE_OUT, "count"),
    ThresholdMetric.VISITS: (Metric.VISITS, "count"),
    ThresholdMetric.SERVED: (Metric.SERVED, "count"),
    ThresholdMetric.MEAN_QUEUE_LENGTH: (Metric.QUEUE_LENGTH, "mean"),
    ThresholdMetric.MAX_QUEUE_LENGTH: (Metric.QUEUE_LENGTH, "max"),
    ThresholdMetric.MEAN_WAIT_S: (Metric.QUEUE_WAIT_S, "mean"),
    ThresholdMetric.MAX_WAIT_S: (Metric.QUEUE_WAIT_S, "max"),
    ThresholdMetric.MEAN_OCCUPANCY: (Metric.OCCUPANCY, "mean"),
    ThresholdMetric.MAX_OCCUPANCY: (Metric.OCCUPANCY, "max"),
}


class ThresholdIn(BaseModel):
    """A store threshold rule as an HQ admin sets it."""

    model_config = ConfigDict(extra="forbid")

    metric: ThresholdMetric
    op: Op
    threshold: float = Field(allow_inf_nan=False)
    window_s: int = Field(3600, ge=60, le=7 * 86400, description="window length, seconds")
    active_from_hour: int | None = Field(
        None, ge=0, le=23, description="applies from this local hour (store time zone)"
    )
    active_to_hour: int | None = Field(
        None, ge=1, le=24, description="until this local hour, exclusive (may wrap midnight)"
    )

    @model_validator(mode="after")
    def _hours_together(self) -> ThresholdIn:
        if (self.active_from_hour is None) != (self.active_to_hour is None):
            raise ValueError("active_from_hour and active_to_hour come together")
        if self.active_from_hour is not None and self.active_from_hour == self.active_to_hour:
            raise ValueError("active_from_hour and active_to_hour must differ")
        return self


class ThresholdOut(ThresholdIn):
    """A stored rule: which store, its id, and whether it is breached now."""

    store_id: str
    rule_id: str
    breached_since: datetime | None = Field(description="null: the condition does not hold")
    created_at: datetime
    updated_at: datetime


class ThresholdPage(PageInfo):
    """Rules by (store_id, rule_id)."""

    items: list[ThresholdOut]


@dataclass
class ThresholdCheck:
    """What one evaluation changed."""

    opened: int = 0
    resolved: int = 0


# -- pure rule ---------------------------------------------------------------------------------


def window_end(now: float, lag_s: float) -> int:
    """End (exclusive, UNIX s) of the window evaluated at ``now``: ``now - lag`` cut down to
    the minute."""
    return math.floor((now - lag_s) / 60) * 60


def in_active_hours(local_hour: int, from_hour: int | None, to_hour: int | None) -> bool:
    """Whether ``local_hour`` (0-23) lies in ``[from_hour, to_hour)``, wrapping past
    midnight when ``from_hour > to_hour``; always True without hours."""
    if from_hour is None or to_hour is None:
        return True
    if from_hour < to_hour:
        return from_hour <= local_hour < to_hour
    return local_hour >= from_hour or local_hour < to_hour


def metric_value(metric: ThresholdMetric, agg: Aggregate | None) -> float | None:
    """The rule's value from the window's aggregate (None: no samples to judge by)."""
    how = _SOURCE[metric][1]
    if how == "count":
        return float(agg.count) if agg is not None else 0.0
    if agg is None:
        return None
    return agg.mean if how == "mean" else agg.max


def breached(value: float, op: str, threshold: float) -> bool:
    """Whether ``value op threshold`` holds."""
    return _OPS[op](value, threshold)


# -- rules at rest -----------------------------------------------------------------------------


def put_threshold(
    conn: Connection, store_id: str, rule_id: str, rule: ThresholdIn, now: float
) -> tuple[ThresholdOut, bool]:
    """Create or replace a rule; (the rule, created). A changed rule starts unbreached: its
    live alert, if any, resolves and the next evaluation judges it afresh."""
    t = ALERT_THRESHOLDS.c
    existed = conn.execute(
        select(t.store_id).where(t.store_id == store_id, t.rule_id == rule_id)
    ).first()
    if existed is not None:
        _end_breach(conn, store_id, rule_id, now, now)
    values = {**rule.model_dump(), "metric": rule.metric.value}
    stmt = upsert(conn, ALERT_THRESHOLDS).values(
        store_id=store_id, rule_id=rule_id, created_at=now, updated_at=now, **values
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.store_id, t.rule_id],
            set_={**values, "updated_at": now, "breached_since": None},
        )
    )
    out = get_threshold(conn, store_id, rule_id)
    assert out is not None
    return out, existed is None


def delete_threshold(conn: Connection, store_id: str, rule_id: str, now: float) -> bool:
    """Delete a rule (its live alert resolves); False when there is none."""
    _end_breach(conn, store_id, rule_id, now, now)
    t = ALERT_THRESHOLDS.c
    done = conn.execute(
        delete(ALERT_THRESHOLDS).where(t.store_id == store_id, t.rule_id == rule_id)
    )
    return bool(done.rowcount)


def get_threshold(conn: Connection, store_id: str, rule_id: str) -> ThresholdOut | None:
    """One rule, or None."""
    t = ALERT_THRESHOLDS.c
    row = (
        conn.execute(select(ALERT_THRESHOLDS).where(t.store_id == store_id, t.rule_id == rule_id))
        .mappings()
        .first()
    )
    return None if row is None else _out(row)


def list_thresholds(
    conn: Connection, store_ids: list[str] | None, limit: int, offset: int
) -> ThresholdPage:
    """Rules of ``store_ids`` (None: all) by (store_id, rule_id)."""
    t = ALERT_THRESHOLDS.c
    where = [] if store_ids is None else [t.store_id.in_(store_ids)]
    total = conn.execute(
        select(func.count()).select_from(ALERT_THRESHOLDS).where(*where)
    ).scalar_one()
    rows = conn.execute(
        select(ALERT_THRESHOLDS)
        .where(*where)
        .order_by(t.store_id, t.rule_id)
        .limit(limit)
        .offset(offset)
    ).mappings()
    return ThresholdPage(
        items=[_out(r) for r in rows], **page_info(total, limit, offset).model_dump()
    )


# -- evaluation --------------------------------------------------------------------------------


def check_thresholds(conn: Connection, now: float, lag_s: float) -> ThresholdCheck:
    """Evaluate every rule on its window ending ``window_end(now, lag_s)``; open an alert
    for each new breach and resolve those whose condition ended."""
    out = ThresholdCheck()
    end = window_end(now, lag_s)
    t, s = ALERT_THRESHOLDS.c, STORES.c
    rules = (
        conn.execute(
            select(ALERT_THRESHOLDS, s.timezone)
            .join_from(ALERT_THRESHOLDS, STORES, s.store_id == t.store_id, isouter=True)
            .order_by(t.store_id, t.rule_id)
        )
        .mappings()
        .all()
    )
    for r in rules:
        metric = ThresholdMetric(r["metric"])
        zone = ZoneInfo(r["timezone"] or "UTC")
        hour = datetime.fromtimestamp(end, zone).hour
        value: float | None = None
        holds: bool | None = False
        if in_active_hours(hour, r["active_from_hour"], r["active_to_hour"]):
            value = metric_value(metric, _window(conn, r["store_id"], metric, end, r["window_s"]))
            holds = None if value is None else breached(value, r["op"], r["threshold"])
        if holds is None:
            continue  # no samples in the window: nothing to judge by
        since = r["breached_since"]
        if holds:
            if since is None:
                since = float(end)
                conn.execute(
                    update(ALERT_THRESHOLDS)
                    .where(t.store_id == r["store_id"], t.rule_id == r["rule_id"])
                    .values(breached_since=since)
                )
            assert value is not None
            out.opened += _open(conn, r, metric, value, since, end, now)
        elif since is not None:
            out.resolved += _end_breach(conn, r["store_id"], r["rule_id"], float(end), now)
    return out


def _window(
    conn: Connection, store_id: str, metric: ThresholdMetric, end: int, window_s: int
) -> Aggregate | None:
    r = ROLLUPS.c
    got = sum_rollups(
        conn,
        [
            r.store_id == store_id,
            r.metric == _SOURCE[metric][0].value,
            r.bucket_start >= end - window_s,
            r.bucket_start < end,
        ],
        literal(1),
        [],
    )
    return next(iter(got.values()), None)


def _active_key(store_id: str, rule_id: str) -> str:
    return f"store_threshold/{store_id}/{rule_id}"


def _open(
    conn: Connection,
    r: RowMapping,
    metric: ThresholdMetric,
    value: float,
    since: float,
    end: int,
    now: float,
) -> int:
    window_min = r["window_s"] / 60
    opened = open_alert(
        conn,
        NewAlert(
            store_id=r["store_id"],
            kind=AlertKind.STORE_THRESHOLD,
            source="hub",
            rule_id=r["rule_id"],
            raised_at=float(end),
            message=(
                f"{metric.value} over the last {window_min:g} min is {value:g} "
                f"({r['op']} {r['threshold']:g})"
            ),
            dedup_key=f"{_active_key(r['store_id'], r['rule_id'])}/{since!r}",
            active_key=_active_key(r["store_id"], r["rule_id"]),
            metric=metric.value,
            op=r["op"],
            threshold=r["threshold"],
            value=value,
        ),
        now,
    )
    return int(opened is not None)


def _end_breach(conn: Connection, store_id: str, rule_id: str, ended: float, now: float) -> int:
    t = ALERT_THRESHOLDS.c
    conn.execute(
        update(ALERT_THRESHOLDS)
        .where(t.store_id == store_id, t.rule_id == rule_id)
        .values(breached_since=None)
    )
    live = live_alert_id(conn, _active_key(store_id, rule_id))
    if live is None:
        return 0
    resolve_alert(conn, live[0], "hub", None, now, cleared_at=ended)
    return 1


def _out(row: RowMapping) -> ThresholdOut:
    def t(v: float | None) -> datetime | None:
        return None if v is None else datetime.fromtimestamp(v, UTC)

    created, updated = t(row["created_at"]), t(row["updated_at"])
    assert created is not None and updated is not None
    return ThresholdOut(
        store_id=row["store_id"],
        rule_id=row["rule_id"],
        metric=ThresholdMetric(row["metric"]),
        op=row["op"],
        threshold=row["threshold"],
        window_s=row["window_s"],
        active_from_hour=row["active_from_hour"],
        active_to_hour=row["active_to_hour"],
        breached_since=t(row["breached_since"]),
        created_at=created,
        updated_at=updated,
    )
