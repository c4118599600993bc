"""Builders of telemetry records and batches for hub tests, and readers of what the hub stored.

Expected values in tests are computed here from the raw samples (sum of the values, their
min/max, which bin each falls in), never copied from the hub's output.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, select, text

from cloud_hub.models import DEAD_LETTERS, DEVICES, HEATMAPS, ROLLUPS
from common.sync import RecordKind, SyncRecord, TelemetryBatch
from common.telemetry import AnalyticsEvent, HeatmapRollup, Rollup

T0 = 1_700_000_040  # a minute boundary, UNIX s
_batch_ids = itertools.count(1)


def counter(count: int, bucket_start: int = T0, target: str = "door", **kw: Any) -> Rollup:
    """A counter rollup of ``count`` events (store s1, camera cam1, metric line_in)."""
    fields: dict[str, Any] = {
        "store_id": "s1",
        "camera_id": "cam1",
        "target_id": target,
        "metric": "line_in",
        "bucket_start": bucket_start,
        "interval_s": 60,
        "kind": "counter",
        "count": count,
    }
    return Rollup(**{**fields, **kw})


def samples(
    values: list[float],
    edges: list[float] | None = None,
    bucket_start: int = T0,
    target: str = "till",
    **kw: Any,
) -> Rollup:
    """A samples rollup of ``values`` (dwell_s), with a histogram over ``edges`` if given."""
    hist = None
    if edges is not None:
        hist = [0] * (len(edges) + 1)
        for v in values:
            hist[bisect.bisect_right(edges, v)] += 1
    fields: dict[str, Any] = {
        "store_id": "s1",
        "camera_id": "cam1",
        "target_id": target,
        "metric": "dwell_s",
        "bucket_start": bucket_start,
        "interval_s": 60,
        "kind": "samples",
        "count": len(values),
        "sum": sum(values),
        "min": min(values),
        "max": max(values),
        "histogram_edges": edges,
        "histogram": hist,
    }
    return Rollup(**{**fields, **kw})


def heatmap(
    cells: list[float], grid_w: int = 2, bucket_start: int = T0, **kw: Any
) -> HeatmapRollup:
    """A heatmap of camera cam1 with ``cells`` person-seconds, ``grid_w`` columns."""
    fields: dict[str, Any] = {
        "store_id": "s1",
        "camera_id": "cam1",
        "bucket_start": bucket_start,
        "interval_s": 60,
        "grid_w": grid_w,
        "grid_h": len(cells) // grid_w,
        "person_seconds": cells,
    }
    return HeatmapRollup(**{**fields, **kw})


def crossing(track_id: int, occurred_at: float, direction: str = "in") -> AnalyticsEvent:
    """A line-crossing event on line door of cam1."""
    return AnalyticsEvent(
        kind="line_crossing",
        store_id="s1",
        camera_id="cam1",
        target_id="door",
        occurred_at=occurred_at,
        track_id=track_id,
        payload={"direction": direction},
    )


def kind_of(body: BaseModel) -> str:
    """The RecordKind value for a body model."""
    if isinstance(body, Rollup):
        return RecordKind.ROLLUP.value
    if isinstance(body, HeatmapRollup):
        return RecordKind.HEATMAP.value
    if isinstance(body, AnalyticsEvent):
        return RecordKind.EVENT.value
    return RecordKind.OUTBOX_DROPPED.value


def record(seq: int, body: BaseModel | dict[str, Any], kind: str | None = None) -> SyncRecord:
    """A record of ``body`` (a model, or a raw dict with an explicit ``kind``)."""
    if isinstance(body, BaseModel):
        return SyncRecord(
            seq=seq,
            kind=kind or kind_of(body),
            created_at=float(T0),
            body=body.model_dump(mode="json"),
        )
    assert kind is not None
    return SyncRecord(seq=seq, kind=kind, created_at=float(T0), body=body)


def batch(
    records: list[SyncRecord],
    device_id: str = "d1",
    store_id: str = "s1",
    batch_id: str | None = None,
) -> TelemetryBatch:
    """A batch of ``records`` from ``device_id``."""
    return TelemetryBatch(
        batch_id=batch_id or f"b{next(_batch_ids)}",
        store_id=store_id,
        device_id=device_id,
        sent_at=float(T0 + 60),
        records=records,
    )


def numbered(bodies: list[BaseModel], first_seq: int = 1) -> list[SyncRecord]:
    """Records of ``bodies`` with consecutive seqs from ``first_seq``."""
    return [record(first_seq + i, b) for i, b in enumerate(bodies)]


def rollups(engine: Engine) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Stored rollups by (target_id, metric, bucket_start)."""
    with engine.connect() as conn:
        rows = conn.execute(select(ROLLUPS)).mappings().all()
    return {(r["target_id"], r["metric"], int(r["bucket_start"])): dict(r) for r in rows}


def heatmaps(engine: Engine) -> dict[tuple[str, int], list[float]]:
    """Stored heatmap cells by (camera_id, bucket_start)."""
    with engine.connect() as conn:
        rows = conn.execute(select(HEATMAPS)).mappings().all()
    return {(r["camera_id"], int(r["bucket_start"])): list(r["person_seconds"]) for r in rows}


def device(engine: Engine, device_id: str = "d1") -> dict[str, Any]:
    """The devices row of ``device_id``."""
    with engine.connect() as conn:
        row = conn.execute(select(DEVICES).where(DEVICES.c.device_id == device_id)).mappings().one()
    return dict(row)


def count(engine: Engine, table: str, where: str = "1 = 1", **params: Any) -> int:
    """Rows of ``table`` matching ``where``."""
    with engine.connect() as conn:
        n = conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar()
    return int(n or 0)


def dead_letters(engine: Engine) -> list[dict[str, Any]]:
    """All dead-letter rows, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(DEAD_LETTERS).order_by(DEAD_LETTERS.c.id)).mappings().all()
    return [dict(r) for r in rows]
