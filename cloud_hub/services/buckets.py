"""Merge partial time buckets (rollups, heatmaps) into their tables, exactly, under concurrency.

For the keys of one batch, in sorted order:

1. ``INSERT ... ON CONFLICT DO NOTHING RETURNING key``: buckets the hub has never seen land
   in one bulk statement (the common case: a backlog of fresh buckets).
2. The others already exist: ``SELECT ... FOR UPDATE`` locks them (PostgreSQL; SQLite holds its
   write lock for the whole transaction), the merge rule adds the stored and the new partial in
   Python (histograms and heatmaps are lists), and one bulk ``UPDATE`` writes them back.

Because a row is locked from the read to the commit, two workers merging the same bucket at
the same time serialise on that row, and rows are locked in one global order (sorted keys), so
they cannot deadlock. A conflicting bucket (different kind, interval, edges or grid) dead-letters
the records that fed it and leaves the stored row as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Table, and_, bindparam, select, tuple_, update
from sqlalchemy.engine import Connection

from cloud_hub.services.merge import Folded, MergeConflict
from cloud_hub.services.sql import insert_rows, lock_order
from common.sync import DeadLetterNotice
from common.telemetry import HeatmapRollup, Rollup, RollupKind

T = TypeVar("T", Rollup, HeatmapRollup)

LOCK_CHUNK = 500  # keys per SELECT ... FOR UPDATE (SQLite allows 32766 bound values)


@dataclass(frozen=True)
class BucketTable(Generic[T]):
    """How one kind of bucket maps onto its table; the primary key is the natural key."""

    table: Table
    key: Callable[[T], tuple[Any, ...]]  # values of the primary key columns, in their order
    to_row: Callable[[T, float], dict[str, Any]]  # (value, updated_at) -> all columns
    from_row: Callable[[Row[Any]], T]
    merge: Callable[[T, T], T]  # (stored, incoming) -> merged; raises MergeConflict


def apply_buckets(
    conn: Connection,
    spec: BucketTable[T],
    folded: dict[tuple[Any, ...], Folded[T]],
    updated_at: float,
) -> tuple[list[T], list[DeadLetterNotice]]:
    """Insert or merge each folded bucket into ``spec.table``: the partials that landed (new
    or merged, in key order; what derived tables such as ``rollups_hourly`` add) and notices
    for the conflicting ones, which changed nothing.

    ``updated_at`` is UNIX seconds (the hub clock at ingest).
    """
    if not folded:
        return [], []
    table = spec.table
    pk = list(table.primary_key.columns)
    keys = sorted(folded)
    candidates = [spec.to_row(folded[k].value, updated_at) for k in keys]
    inserted = set(insert_rows(conn, table, candidates, skip_conflicts_on=pk, returning=pk))
    existing = [k for k in keys if k not in inserted]
    if not existing:
        return [folded[k].value for k in keys], []
    conflicting: set[tuple[Any, ...]] = set()
    dead: list[DeadLetterNotice] = []
    updates: list[dict[str, Any]] = []
    for chunk_start in range(0, len(existing), LOCK_CHUNK):
        chunk = existing[chunk_start : chunk_start + LOCK_CHUNK]
        rows = conn.execute(
            select(table)
            .where(tuple_(*pk).in_(chunk))
            .order_by(*lock_order(conn, pk))
            .with_for_update()
        ).all()
        for row in rows:
            stored = spec.from_row(row)
            part = folded[spec.key(stored)]
            try:
                merged = spec.merge(stored, part.value)
            except MergeConflict as exc:
                dead.extend(DeadLetterNotice(seq=s, reason=exc.reason) for s in part.seqs)
                conflicting.add(spec.key(stored))
                continue
            updates.append(spec.to_row(merged, updated_at))
    if updates:
        _update_by_key(conn, table, updates)
    return [folded[k].value for k in keys if k not in conflicting], dead


def _update_by_key(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    pk = list(table.primary_key.columns)
    rest = [c for c in table.columns if not c.primary_key]
    stmt = (
        update(table)
        .where(and_(*[c == bindparam(f"k_{c.name}") for c in pk]))
        .values({c.name: bindparam(f"v_{c.name}") for c in rest})
    )
    params = [
        {**{f"k_{c.name}": r[c.name] for c in pk}, **{f"v_{c.name}": r[c.name] for c in rest}}
        for r in rows
    ]
    conn.execute(stmt, params)


def rollup_row(r: Rollup, updated_at: float) -> dict[str, Any]:
    """All columns of a ``rollups`` row for ``r``."""
    return {
        "store_id": r.store_id,
        "camera_id": r.camera_id,
        "target_id": r.target_id,
        "metric": r.metric,
        "bucket_start": r.bucket_start,
        "interval_s": r.interval_s,
        "kind": r.kind.value,
        "count": r.count,
        "sum": r.sum,
        "min": r.min,
        "max": r.max,
        "histogram_edges": r.histogram_edges,
        "histogram": r.histogram,
        "updated_at": updated_at,
    }


def rollup_from_row(row: Row[Any]) -> Rollup:
    """The stored rollup of a ``rollups`` row (trusted: it was validated on the way in)."""
    m = row._mapping
    fields = {k: m[k] for k in Rollup.model_fields if k != "schema_version"}
    fields["kind"] = RollupKind(fields["kind"])
    return Rollup.model_construct(**fields)


def heatmap_row(h: HeatmapRollup, updated_at: float) -> dict[str, Any]:
    """All columns of a ``heatmaps`` row for ``h``."""
    return {
        "store_id": h.store_id,
        "camera_id": h.camera_id,
        "bucket_start": h.bucket_start,
        "interval_s": h.interval_s,
        "grid_w": h.grid_w,
        "grid_h": h.grid_h,
        "person_seconds": h.person_seconds,
        "updated_at": updated_at,
    }


def heatmap_from_row(row: Row[Any]) -> HeatmapRollup:
    """The stored heatmap of a ``heatmaps`` row (trusted)."""
    m = row._mapping
    fields = {k: m[k] for k in HeatmapRollup.model_fields if k != "schema_version"}
    return HeatmapRollup.model_construct(**fields)
