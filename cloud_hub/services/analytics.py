"""Analytics series of one store per local-calendar bucket: footfall, visits and dwell, queues,
occupancy. Each is re-aggregated from the stored rollups in one SQL statement: whole UTC hours
from the hourly sums where every bucket edge falls on a whole hour (hour, day and week buckets in
whole-hour zones), the rest from the minute rows (``rollup_sums.sum_spans``).

Every series is dense: each bucket of the page is listed, empty or not, in time order, and
within a bucket the lines, zones or targets that had data are listed by ``(camera_id, id)``.
Paging (``limit``/``offset``) counts buckets. A rollup counts in a bucket when its
``bucket_start`` lies in ``[start, end)`` and in the bucket; rollups coarser than the bucket
(a 5-minute rollup asked per minute) count whole in the bucket where they start.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from cloud_hub.services.calendar import (
    MAX_BUCKETS,
    BucketSize,
    LocalBucket,
    RangeError,
    edges_on_whole_hours,
    local_buckets,
    range_seconds,
    utc_offsets,
)
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.rollup_sums import (
    Aggregate,
    CalendarKey,
    RollupScope,
    TimeSpan,
    sum_spans,
)
from cloud_hub.services.stores import StoreOut
from common.telemetry import Metric

log = logging.getLogger(__name__)

T = TypeVar("T")
_EMPTY = Aggregate(count=0, sum=None, min=None, max=None)


@dataclass(frozen=True)
class SeriesQuery:
    """One series request: a store (its time zone sets the calendar), ``[start, end)``, the
    bucket size, optional camera and target (line or zone) filters, and the page."""

    store: StoreOut
    start: datetime
    end: datetime
    bucket: BucketSize
    camera_id: str | None
    target_id: str | None
    limit: int
    offset: int


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineFootfall(_Frozen):
    """Crossings of one counting line in one bucket."""

    camera_id: str
    line_id: str
    footfall_in: int = Field(description="crossings towards the inside")
    footfall_out: int = Field(description="crossings away from the inside")


class FootfallBucket(_Frozen):
    """In and out over every matching line, and per line."""

    start: datetime = Field(description="bucket start, in the store's local time")
    end: datetime = Field(description="bucket end (exclusive), local time")
    footfall_in: int
    footfall_out: int
    lines: list[LineFootfall]


class ZoneVisits(_Frozen):
    """Visits to one dwell zone in one bucket (dwell in seconds)."""

    camera_id: str
    zone_id: str
    visits: int = Field(description="visits that ended, dwell >= the zone's min_dwell_s")
    engaged: int = Field(description="visits with dwell >= the zone's engaged_s")
    pass_bys: int = Field(description="stays shorter than min_dwell_s")
    dwell_samples: int = Field(description="visits whose dwell was measured")
    mean_dwell_s: float | None = Field(description="sum / count of the dwell samples")
    max_dwell_s: float | None


class VisitsBucket(_Frozen):
    """Visits and dwell per zone."""

    start: datetime
    end: datetime
    zones: list[ZoneVisits]


class QueueStats(_Frozen):
    """One queue zone in one bucket."""

    camera_id: str
    zone_id: str
    mean_queue_length: float | None = Field(description="people in the queue, mean of samples")
    max_queue_length: float | None
    served: int = Field(description="people who left the queue")
    mean_wait_s: float | None = Field(description="estimated wait for a joiner, mean, seconds")
    max_wait_s: float | None


class QueuesBucket(_Frozen):
    """Queue statistics per queue zone."""

    start: datetime
    end: datetime
    queues: list[QueueStats]


class TargetOccupancy(_Frozen):
    """People present: in a zone (``occupancy``) or in a camera's view (``people``)."""

    camera_id: str
    target_id: str = Field(description="zone id, or the camera id for metric people")
    metric: Literal["occupancy", "people"] = Field(description="occupancy or people")
    mean: float | None
    max: float | None
    samples: int


class OccupancyBucket(_Frozen):
    """Occupancy per zone and people per camera."""

    start: datetime
    end: datetime
    targets: list[TargetOccupancy]


class SeriesPage(PageInfo):
    """A page of buckets of one store; ``total`` counts buckets in ``[start, end)``."""

    store_id: str
    timezone: str
    bucket: BucketSize
    start: datetime
    end: datetime


class FootfallSeries(SeriesPage):
    """Footfall per bucket, in time order."""

    items: list[FootfallBucket]


class VisitsSeries(SeriesPage):
    """Visits and dwell per bucket, in time order."""

    items: list[VisitsBucket]


class QueuesSeries(SeriesPage):
    """Queues per bucket, in time order."""

    items: list[QueuesBucket]


class OccupancySeries(SeriesPage):
    """Occupancy per bucket, in time order."""

    items: list[OccupancyBucket]


# (camera_id, target_id) -> metric -> aggregate, for one bucket
BucketData = dict[tuple[str, str], dict[str, Aggregate]]


def _series(
    conn: Connection,
    q: SeriesQuery,
    metrics: Sequence[str],
    build: Callable[[LocalBucket, BucketData], T],
) -> tuple[PageInfo, list[T]]:
    """The page's buckets, each built from its aggregates by ``build``.

    Raises:
        RangeError: the range holds more than ``MAX_BUCKETS`` buckets.
    """
    zone = q.store.zone
    buckets = local_buckets(zone, q.start, q.end, q.bucket)
    if len(buckets) > MAX_BUCKETS:
        raise RangeError(
            "bucket",
            f"the range holds {len(buckets)} {q.bucket.value} buckets, more than "
            f"{MAX_BUCKETS}: use a coarser bucket or a shorter range",
        )
    info = page_info(len(buckets), q.limit, q.offset)
    page = buckets[q.offset : q.offset + q.limit]
    if not page:
        return info, []
    start_ts, end_ts = range_seconds(q.start, q.end)
    lo, hi = max(start_ts, page[0].start_ts), min(end_ts, page[-1].end_ts)
    scope = RollupScope((q.store.store_id,), tuple(metrics), q.camera_id, q.target_id)
    offsets = utc_offsets(zone, lo, hi)
    span = TimeSpan(lo, hi, CalendarKey(tuple(offsets), q.bucket))
    sums = sum_spans(
        conn,
        scope,
        [span],
        by=("camera_id", "target_id", "metric"),
        hourly=edges_on_whole_hours(offsets, q.bucket),
    )
    by_key: dict[int, BucketData] = defaultdict(lambda: defaultdict(dict))
    for (k, camera, target, metric), agg in sums.items():
        by_key[int(k)][(camera, target)][metric] = agg
    known = {b.key for b in page}
    for k in set(by_key) - known:  # only where a zone's own rules break the calendar
        log.warning("store %s: rollups under bucket key %d fit no bucket", q.store.store_id, k)
    return info, [build(b, by_key.get(b.key, {})) for b in page]


def _page_fields(q: SeriesQuery, info: PageInfo) -> dict[str, Any]:
    return {
        **info.model_dump(),
        "store_id": q.store.store_id,
        "timezone": q.store.timezone,
        "bucket": q.bucket,
        "start": q.start.astimezone(q.store.zone),
        "end": q.end.astimezone(q.store.zone),
    }


def _targets(
    data: BucketData, metrics: Sequence[str]
) -> list[tuple[str, str, dict[str, Aggregate]]]:
    """The (camera, target) pairs holding any of ``metrics``, sorted, with their aggregates."""
    return [
        (camera, target, {m: ms.get(m, _EMPTY) for m in metrics})
        for (camera, target), ms in sorted(data.items())
        if any(m in ms for m in metrics)
    ]


FOOTFALL_METRICS = (Metric.LINE_IN.value, Metric.LINE_OUT.value)
VISIT_METRICS = (
    Metric.VISITS.value,
    Metric.ENGAGED.value,
    Metric.PASS_BYS.value,
    Metric.DWELL_S.value,
)
QUEUE_METRICS = (Metric.QUEUE_LENGTH.value, Metric.SERVED.value, Metric.QUEUE_WAIT_S.value)
OccupancyMetric = Literal["occupancy", "people"]
OCCUPANCY_METRICS: tuple[OccupancyMetric, ...] = ("occupancy", "people")


def footfall_series(conn: Connection, q: SeriesQuery) -> FootfallSeries:
    """In/out per bucket over the matching lines (``target_id`` filters one line)."""

    def build(b: LocalBucket, data: BucketData) -> FootfallBucket:
        lines = [
            LineFootfall(
                camera_id=camera,
                line_id=line,
                footfall_in=ms[Metric.LINE_IN].count,
                footfall_out=ms[Metric.LINE_OUT].count,
            )
            for camera, line, ms in _targets(data, FOOTFALL_METRICS)
        ]
        return FootfallBucket(
            start=b.start,
            end=b.end,
            footfall_in=sum(x.footfall_in for x in lines),
            footfall_out=sum(x.footfall_out for x in lines),
            lines=lines,
        )

    info, items = _series(conn, q, FOOTFALL_METRICS, build)
    return FootfallSeries(items=items, **_page_fields(q, info))


def visits_series(conn: Connection, q: SeriesQuery) -> VisitsSeries:
    """Visits, engaged visitors, pass-bys and dwell per zone and bucket."""

    def build(b: LocalBucket, data: BucketData) -> VisitsBucket:
        zones = []
        for camera, zone_id, ms in _targets(data, VISIT_METRICS):
            dwell = ms[Metric.DWELL_S]
            zones.append(
                ZoneVisits(
                    camera_id=camera,
                    zone_id=zone_id,
                    visits=ms[Metric.VISITS].count,
                    engaged=ms[Metric.ENGAGED].count,
                    pass_bys=ms[Metric.PASS_BYS].count,
                    dwell_samples=dwell.count,
                    mean_dwell_s=dwell.mean,
                    max_dwell_s=dwell.max,
                )
            )
        return VisitsBucket(start=b.start, end=b.end, zones=zones)

    info, items = _series(conn, q, VISIT_METRICS, build)
    return VisitsSeries(items=items, **_page_fields(q, info))


def queues_series(conn: Connection, q: SeriesQuery) -> QueuesSeries:
    """Queue length (mean, max), people served and estimated wait per queue zone and bucket."""

    def build(b: LocalBucket, data: BucketData) -> QueuesBucket:
        queues = [
            QueueStats(
                camera_id=camera,
                zone_id=zone_id,
                mean_queue_length=ms[Metric.QUEUE_LENGTH].mean,
                max_queue_length=ms[Metric.QUEUE_LENGTH].max,
                served=ms[Metric.SERVED].count,
                mean_wait_s=ms[Metric.QUEUE_WAIT_S].mean,
                max_wait_s=ms[Metric.QUEUE_WAIT_S].max,
            )
            for camera, zone_id, ms in _targets(data, QUEUE_METRICS)
        ]
        return QueuesBucket(start=b.start, end=b.end, queues=queues)

    info, items = _series(conn, q, QUEUE_METRICS, build)
    return QueuesSeries(items=items, **_page_fields(q, info))


def occupancy_series(conn: Connection, q: SeriesQuery) -> OccupancySeries:
    """Occupancy (mean, max people) per zone, and people in view per camera, per bucket."""

    def build(b: LocalBucket, data: BucketData) -> OccupancyBucket:
        targets = []
        for (camera, target), ms in sorted(data.items()):
            for metric in OCCUPANCY_METRICS:
                agg = ms.get(metric)
                if agg is None:
                    continue
                targets.append(
                    TargetOccupancy(
                        camera_id=camera,
                        target_id=target,
                        metric=metric,
                        mean=agg.mean,
                        max=agg.max,
                        samples=agg.count,
                    )
                )
        return OccupancyBucket(start=b.start, end=b.end, targets=targets)

    info, items = _series(conn, q, OCCUPANCY_METRICS, build)
    return OccupancySeries(items=items, **_page_fields(q, info))
