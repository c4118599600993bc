"""``/api/v1/analytics``: read-only series, heatmaps and rankings of the key's stores.

Series are per bucket of the store's local calendar (``minute``, ``hour``, ``day``, ``week``),
re-aggregated from the minute rollups; see ``cloud_hub.services.analytics`` and ``calendar``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query
from sqlalchemy.engine import Connection

from cloud_hub.api.auth import AUTH_RESPONSES, STORE_RESPONSES, visible_store
from cloud_hub.api.deps import EngineDep
from cloud_hub.api.params import (
    DEFAULT_LIMIT,
    CameraQuery,
    End,
    Limit,
    LineQuery,
    Offset,
    Start,
    StoreIdQuery,
    TargetQuery,
    ZoneQuery,
    invalid_range,
)
from cloud_hub.api.reads import AnalyticsRead, ReadCaller, run_read
from cloud_hub.core.security import Caller
from cloud_hub.services.analytics import (
    FootfallSeries,
    OccupancySeries,
    QueuesSeries,
    SeriesQuery,
    VisitsSeries,
    footfall_series,
    occupancy_series,
    queues_series,
    visits_series,
)
from cloud_hub.services.calendar import BucketSize, RangeError, check_instant, check_range
from cloud_hub.services.heatmap_totals import HeatmapPage, heatmap_totals
from cloud_hub.services.ranking import RankingMetric, RankingPage, RankingPeriod, rank_stores
from cloud_hub.services.stores import visible_stores

router = APIRouter(prefix="/analytics", tags=["analytics"])

T = TypeVar("T")
Bucket = Annotated[BucketSize, Query(description="bucket width in the store's local calendar")]
At = Annotated[
    datetime | None,
    Query(description="compare up to this instant (ISO 8601 with offset; default now)"),
]


async def _read(
    engine: EngineDep, reader: ReadCaller, build: Callable[[Connection, Caller], T]
) -> T:
    """Run ``build`` on a read connection in one thread-pool call (``api.reads``); a range the
    service refuses (more buckets than allowed, found only once they are listed) becomes a
    422."""
    try:
        return await run_read(engine, reader, build)
    except RangeError as exc:
        raise invalid_range(exc) from None


async def _series(
    engine: EngineDep,
    reader: ReadCaller,
    store_id: str,
    series: Callable[[Connection, SeriesQuery], T],
    window: tuple[datetime, datetime, BucketSize],
    camera_id: str | None,
    target_id: str | None,
    page: tuple[int, int],
) -> T:
    start, end, bucket = window
    try:
        check_range(start, end, bucket)
    except RangeError as exc:
        raise invalid_range(exc) from None

    def build(conn: Connection, caller: Caller) -> T:
        store = visible_store(conn, caller, store_id)
        q = SeriesQuery(store, start, end, bucket, camera_id, target_id, *page)
        return series(conn, q)

    return await _read(engine, reader, build)


@router.get("/footfall", response_model=FootfallSeries, responses=STORE_RESPONSES)
async def footfall(
    reader: AnalyticsRead,
    engine: EngineDep,
    store_id: StoreIdQuery,
    start: Start,
    end: End,
    bucket: Bucket = BucketSize.HOUR,
    camera_id: CameraQuery = None,
    line_id: LineQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> FootfallSeries:
    """People in and out per bucket, over every line of the store or of the chosen camera or
    line, and per line."""
    return await _series(
        engine, reader, store_id, footfall_series, (start, end, bucket), camera_id, line_id,
        (limit, offset),
    )  # fmt: skip


@router.get("/visits", response_model=VisitsSeries, responses=STORE_RESPONSES)
async def visits(
    reader: AnalyticsRead,
    engine: EngineDep,
    store_id: StoreIdQuery,
    start: Start,
    end: End,
    bucket: Bucket = BucketSize.HOUR,
    camera_id: CameraQuery = None,
    zone_id: ZoneQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> VisitsSeries:
    """Visits, engaged visitors, pass-bys and dwell (mean = sum / count of dwell samples) per
    zone and bucket."""
    return await _series(
        engine, reader, store_id, visits_series, (start, end, bucket), camera_id, zone_id,
        (limit, offset),
    )  # fmt: skip


@router.get("/queues", response_model=QueuesSeries, responses=STORE_RESPONSES)
async def queues(
    reader: AnalyticsRead,
    engine: EngineDep,
    store_id: StoreIdQuery,
    start: Start,
    end: End,
    bucket: Bucket = BucketSize.HOUR,
    camera_id: CameraQuery = None,
    zone_id: ZoneQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> QueuesSeries:
    """Queue length (mean, max), people served and estimated wait per queue zone and bucket."""
    return await _series(
        engine, reader, store_id, queues_series, (start, end, bucket), camera_id, zone_id,
        (limit, offset),
    )  # fmt: skip


@router.get("/occupancy", response_model=OccupancySeries, responses=STORE_RESPONSES)
async def occupancy(
    reader: AnalyticsRead,
    engine: EngineDep,
    store_id: StoreIdQuery,
    start: Start,
    end: End,
    bucket: Bucket = BucketSize.HOUR,
    camera_id: CameraQuery = None,
    target_id: TargetQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> OccupancySeries:
    """People present per bucket (mean and max of the samples): per zone (``occupancy``) and
    in each camera's view (``people``)."""
    return await _series(
        engine, reader, store_id, occupancy_series, (start, end, bucket), camera_id, target_id,
        (limit, offset),
    )  # fmt: skip


@router.get("/heatmap", response_model=HeatmapPage, responses=STORE_RESPONSES)
async def heatmap(
    reader: AnalyticsRead,
    engine: EngineDep,
    store_id: StoreIdQuery,
    start: Start,
    end: End,
    camera_id: CameraQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> HeatmapPage:
    """Person-seconds per grid cell summed over ``[start, end)`` (at most 31 days), one item
    per camera (and grid, if it changed), by camera id."""
    try:
        check_range(start, end)
    except RangeError as exc:
        raise invalid_range(exc) from None

    def build(conn: Connection, caller: Caller) -> HeatmapPage:
        store = visible_store(conn, caller, store_id)
        return heatmap_totals(conn, store, start, end, camera_id, limit, offset)

    return await _read(engine, reader, build)


@router.get("/ranking", response_model=RankingPage, responses=AUTH_RESPONSES)
async def ranking(
    reader: AnalyticsRead,
    engine: EngineDep,
    metric: RankingMetric = RankingMetric.FOOTFALL_IN,
    period: RankingPeriod = RankingPeriod.WEEK,
    at: At = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> RankingPage:
    """The key's stores ranked by ``metric`` this period against the previous one (change in
    %), each in its own local calendar: this day/week/month so far against the previous one
    up to the same local time."""
    when = datetime.now(UTC).replace(microsecond=0) if at is None else at
    try:
        check_instant("at", when)
    except RangeError as exc:
        raise invalid_range(exc) from None

    def read(conn: Connection, caller: Caller) -> RankingPage:
        stores = visible_stores(conn, caller.store_ids)
        return rank_stores(conn, stores, metric, period, when, limit, offset)

    return await run_read(engine, reader, read)
