"""A store's heatmaps summed over a time range: person-seconds per grid cell, per camera.

Stored heatmaps are per camera and minute; this adds them cell by cell over ``[start, end)``.
A camera whose grid changed inside the range (a new config) yields one item per grid.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Connection

from cloud_hub.models import HEATMAPS
from cloud_hub.services.calendar import RangeError, range_seconds
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.stores import StoreOut

MAX_HEATMAP_DAYS = 31


class CameraHeatmap(BaseModel):
    """Person-seconds per cell of one camera's grid, summed over the range."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str
    grid_w: int = Field(description="columns")
    grid_h: int = Field(description="rows")
    buckets: int = Field(description="stored heatmap buckets added up")
    person_seconds: list[float] = Field(
        description="grid_w * grid_h values, row-major, row 0 at the top of the image; seconds"
    )


class HeatmapPage(PageInfo):
    """Heatmaps of one store by ``(camera_id, grid_w, grid_h)``."""

    store_id: str
    timezone: str
    start: datetime
    end: datetime
    items: list[CameraHeatmap]


def heatmap_totals(
    conn: Connection,
    store: StoreOut,
    start: datetime,
    end: datetime,
    camera_id: str | None,
    limit: int,
    offset: int,
) -> HeatmapPage:
    """Summed heatmaps of ``store`` over ``[start, end)`` (at most ``MAX_HEATMAP_DAYS``).

    Raises:
        RangeError: the range is longer than ``MAX_HEATMAP_DAYS`` days.
    """
    if (end - start).total_seconds() > MAX_HEATMAP_DAYS * 86_400 + 3600:  # + a DST hour
        raise RangeError(
            "end", f"heatmaps are summed over at most {MAX_HEATMAP_DAYS} days: shorten the range"
        )
    h = HEATMAPS.c
    lo, hi = range_seconds(start, end)
    where: list[ColumnElement[bool]] = [
        h.store_id == store.store_id,
        h.bucket_start >= lo,
        h.bucket_start < hi,
    ]
    if camera_id is not None:
        where.append(h.camera_id == camera_id)
    grids = conn.execute(
        select(h.camera_id, h.grid_w, h.grid_h, func.count())
        .where(*where)
        .group_by(h.camera_id, h.grid_w, h.grid_h)
        .order_by(h.camera_id, h.grid_w, h.grid_h)
    ).all()
    items = []
    for camera, w, ht, n in grids[offset : offset + limit]:
        cells = [0.0] * (w * ht)
        rows = conn.execute(
            select(h.person_seconds).where(
                *where, h.camera_id == camera, h.grid_w == w, h.grid_h == ht
            )
        ).scalars()
        for values in rows:
            cells = [a + b for a, b in zip(cells, values, strict=True)]
        items.append(
            CameraHeatmap(camera_id=camera, grid_w=w, grid_h=ht, buckets=n, person_seconds=cells)
        )
    return HeatmapPage(
        items=items,
        store_id=store.store_id,
        timezone=store.timezone,
        start=start.astimezone(store.zone),
        end=end.astimezone(store.zone),
        **page_info(len(grids), limit, offset).model_dump(),
    )
