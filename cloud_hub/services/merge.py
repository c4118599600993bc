"""Pure merge rules for partial buckets: what two records of one natural key add up to.

An edge agent that restarts mid-bucket sends two partial rollups (or heatmaps) for the same
bucket under different seqs. The ``(device_id, seq)`` ledger already makes redelivery
idempotent, so the hub *adds* partials: counts and sums add, min/max take the extreme, histogram
bins and heatmap cells add. Partials that cannot be added (different kind, interval, histogram
edges or grid) raise ``MergeConflict``; the ingest service dead-letters the later record.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from common.sync import DeadLetterNotice
from common.telemetry import HeatmapRollup, Rollup, RollupKind

T = TypeVar("T", Rollup, HeatmapRollup)
K = TypeVar("K", bound=Hashable)


class MergeConflict(ValueError):
    """Two partials of one bucket disagree on their shape; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def merge_rollups(stored: Rollup, incoming: Rollup) -> Rollup:
    """The sum of two partial rollups of one natural key (order does not matter).

    Raises:
        MergeConflict: kind, interval_s or histogram edges differ.
    """
    key = "/".join(str(k) for k in stored.natural_key)
    if stored.kind is not incoming.kind:
        raise MergeConflict(
            f"rollup {key} is a {stored.kind.value} rollup at the hub, this record is "
            f"{incoming.kind.value}"
        )
    if stored.interval_s != incoming.interval_s:
        raise MergeConflict(
            f"rollup {key} has interval_s {stored.interval_s} at the hub, this record "
            f"{incoming.interval_s}"
        )
    if stored.histogram_edges != incoming.histogram_edges:
        raise MergeConflict(
            f"rollup {key} has histogram_edges {stored.histogram_edges} at the hub, this record "
            f"{incoming.histogram_edges}; bins can only be added over the same edges"
        )
    count = stored.count + incoming.count
    if stored.kind is RollupKind.COUNTER:
        return stored.model_copy(update={"count": count})
    assert stored.sum is not None and incoming.sum is not None  # samples rollups carry them
    assert stored.min is not None and incoming.min is not None
    assert stored.max is not None and incoming.max is not None
    histogram = None
    if stored.histogram is not None and incoming.histogram is not None:
        histogram = [a + b for a, b in zip(stored.histogram, incoming.histogram, strict=True)]
    return stored.model_copy(
        update={
            "count": count,
            "sum": stored.sum + incoming.sum,
            "min": min(stored.min, incoming.min),
            "max": max(stored.max, incoming.max),
            "histogram": histogram,
        }
    )


def merge_heatmaps(stored: HeatmapRollup, incoming: HeatmapRollup) -> HeatmapRollup:
    """The cell-wise sum of two partial heatmaps of one camera and bucket (seconds).

    Raises:
        MergeConflict: interval_s or grid size differ.
    """
    key = f"{stored.store_id}/{stored.camera_id}/{stored.bucket_start}"
    if (stored.grid_w, stored.grid_h) != (incoming.grid_w, incoming.grid_h):
        raise MergeConflict(
            f"heatmap {key} has a {stored.grid_w}x{stored.grid_h} grid at the hub, this record "
            f"{incoming.grid_w}x{incoming.grid_h}"
        )
    if stored.interval_s != incoming.interval_s:
        raise MergeConflict(
            f"heatmap {key} has interval_s {stored.interval_s} at the hub, this record "
            f"{incoming.interval_s}"
        )
    cells = [a + b for a, b in zip(stored.person_seconds, incoming.person_seconds, strict=True)]
    return stored.model_copy(update={"person_seconds": cells})


@dataclass
class Folded(Generic[T]):
    """One bucket's merged value within a batch, and the seqs that fed it."""

    value: T
    seqs: list[int] = field(default_factory=list)


def fold(
    items: Iterable[tuple[int, T]], key: Callable[[T], K], merge: Callable[[T, T], T]
) -> tuple[dict[K, Folded[T]], list[DeadLetterNotice]]:
    """Merge ``(seq, partial)`` items by ``key`` in seq order.

    Returns the merged value per key and a notice for each item that conflicts with what came
    before it under the same key (the first item of a key always lands).
    """
    out: dict[K, Folded[T]] = {}
    dead: list[DeadLetterNotice] = []
    for seq, value in items:
        k = key(value)
        cur = out.get(k)
        if cur is None:
            out[k] = Folded(value, [seq])
            continue
        try:
            cur.value = merge(cur.value, value)
        except MergeConflict as exc:
            dead.append(DeadLetterNotice(seq=seq, reason=exc.reason))
            continue
        cur.seqs.append(seq)
    return out, dead
