"""Ingest one telemetry batch in one transaction: exactly-once, merged, dead-lettered, acked.

At-least-once delivery from the edge becomes exactly-once here. Every record's
``(device_id, seq)`` goes into the ``received_records`` ledger with ``ON CONFLICT DO NOTHING
RETURNING seq``; only the seqs that come back are new and applied, the rest are duplicates and
are acknowledged again without effect. New records are parsed; one that does not parse (unknown
kind, newer schema version, invalid body) or does not merge (see ``merge``) goes to the dead-
letter table and stays in the ledger, so a re-send is a duplicate, not a second dead letter.
Rollups and heatmaps merge into their buckets (the rollups that land are also added to their
hours in ``rollups_hourly``: ``services.rollups_hourly``), shelf statuses update the latest slot
states (``services.inventory``: the newest observation wins), events and outbox-drop notices are
inserted (alert events also open or clear hub alerts, ``services.alerts``),
the device's totals are updated, and only then does the caller commit and send the ack.

Everything here runs on a Connection inside the caller's transaction; ``received_at`` is the
hub clock, passed in.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.engine import Connection

from cloud_hub.models import (
    DEVICES,
    EVENTS,
    HEATMAPS,
    OUTBOX_DROPS,
    RECEIVED,
    ROLLUPS,
    SNAPSHOTS,
)
from cloud_hub.services.alerts import apply_edge_alerts
from cloud_hub.services.buckets import (
    BucketTable,
    apply_buckets,
    heatmap_from_row,
    heatmap_row,
    rollup_from_row,
    rollup_row,
)
from cloud_hub.services.dead_letters import earlier_dead_letters, store_record_dead_letters
from cloud_hub.services.inventory import apply_slot_rows, slot_rows
from cloud_hub.services.merge import fold, merge_heatmaps, merge_rollups
from cloud_hub.services.rollups_hourly import add_to_hours
from cloud_hub.services.sql import greatest, insert_rows, upsert
from cloud_hub.services.stores import ensure_store
from common.sync import (
    BatchAck,
    DeadLetterNotice,
    OutboxDropped,
    TelemetryBatch,
    parse_record_body,
    seq_ranges,
)
from common.telemetry import AnalyticsEvent, EventKind, HeatmapRollup, Rollup, ShelfStatus, Snapshot

log = logging.getLogger(__name__)

ROLLUP_BUCKETS: BucketTable[Rollup] = BucketTable(
    table=ROLLUPS,
    key=lambda r: r.natural_key,
    to_row=rollup_row,
    from_row=rollup_from_row,
    merge=merge_rollups,
)
HEATMAP_BUCKETS: BucketTable[HeatmapRollup] = BucketTable(
    table=HEATMAPS,
    key=lambda h: (h.store_id, h.camera_id, h.bucket_start),
    to_row=heatmap_row,
    from_row=heatmap_from_row,
    merge=merge_heatmaps,
)


class _NewRecords:
    """A batch's new records by what they are."""

    def __init__(self) -> None:
        self.rollups: list[tuple[int, Rollup]] = []
        self.heatmaps: list[tuple[int, HeatmapRollup]] = []
        self.events: list[dict[str, Any]] = []
        self.drops: list[dict[str, Any]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.shelf_slots: list[dict[str, Any]] = []  # latest slot states (services.inventory)
        self.alerts: list[tuple[int, AnalyticsEvent]] = []  # alert_raised / alert_cleared
        self.dropped_at_edge = 0
        self.dead: list[DeadLetterNotice] = []


def ingest_batch(
    conn: Connection, batch: TelemetryBatch, received_at: float, *, strict_json: bool = False
) -> BatchAck:
    """Apply ``batch`` on ``conn`` (inside the caller's transaction) and return its ack.

    The caller must commit before sending the ack. ``received_at`` is UNIX seconds (hub clock).
    ``strict_json``: the payload was parsed as strict JSON, so no body holds NaN or Infinity
    and the per-record check for them is skipped.
    """
    new = _claim(conn, batch, received_at)
    duplicates = [r.seq for r in batch.records if r.seq not in new]
    got = _sort_new(batch, new, received_at, strict_json)

    folded_rollups, dead = fold(got.rollups, ROLLUP_BUCKETS.key, merge_rollups)
    got.dead += dead
    applied, dead = apply_buckets(conn, ROLLUP_BUCKETS, folded_rollups, received_at)
    got.dead += dead
    add_to_hours(conn, applied)  # rollups_hourly stays their sum: same transaction
    folded_heatmaps, dead = fold(got.heatmaps, HEATMAP_BUCKETS.key, merge_heatmaps)
    got.dead += dead
    got.dead += apply_buckets(conn, HEATMAP_BUCKETS, folded_heatmaps, received_at)[1]
    if got.events:
        insert_rows(conn, EVENTS, got.events)
    if got.alerts:
        apply_edge_alerts(conn, batch.device_id, got.alerts, received_at)
    if got.drops:
        insert_rows(conn, OUTBOX_DROPS, got.drops)
    if got.snapshots:
        insert_rows(conn, SNAPSHOTS, got.snapshots)
    if got.shelf_slots:
        apply_slot_rows(conn, got.shelf_slots)
    got.dead.sort(key=lambda n: n.seq)
    store_record_dead_letters(conn, batch, got.dead, received_at)
    earlier = earlier_dead_letters(conn, batch.device_id, duplicates)
    _update_device(conn, batch, received_at, len(new), len(duplicates), got)
    ensure_store(conn, batch.store_id, received_at)

    dead_seqs = {n.seq for n in got.dead} | {n.seq for n in earlier}
    if got.dead:
        log.warning(
            "store %s device %s batch %s: %d record(s) dead-lettered, first seq %d: %s",
            batch.store_id, batch.device_id, batch.batch_id, len(got.dead),
            got.dead[0].seq, got.dead[0].reason,
        )  # fmt: skip
    return BatchAck(
        batch_id=batch.batch_id,
        device_id=batch.device_id,
        committed=seq_ranges([r.seq for r in batch.records if r.seq not in dead_seqs]),
        duplicates=len(duplicates),
        dead_lettered=sorted([*got.dead, *earlier], key=lambda n: n.seq),
    )


def _claim(conn: Connection, batch: TelemetryBatch, received_at: float) -> set[int]:
    """Insert the batch's keys into the ledger; the seqs that were not there before."""
    if not batch.records:
        return set()
    c = RECEIVED.c
    rows = [
        {
            "device_id": batch.device_id,
            "seq": r.seq,
            "kind": r.kind,
            "batch_id": batch.batch_id,
            "received_at": received_at,
        }
        for r in batch.records
    ]
    claimed = insert_rows(
        conn, RECEIVED, rows, skip_conflicts_on=[c.device_id, c.seq], returning=[c.seq]
    )
    return {int(r[0]) for r in claimed}


def _sort_new(
    batch: TelemetryBatch, new: set[int], received_at: float, strict_json: bool
) -> _NewRecords:
    """Parse the new records and sort them by kind; unparsable ones become notices."""
    got = _NewRecords()
    for rec in batch.records:
        if rec.seq not in new:
            continue
        try:
            if not strict_json:
                json.dumps(rec.body, allow_nan=False)
        except ValueError:
            reason = "body holds a non-finite number (NaN or Infinity)"
            got.dead.append(DeadLetterNotice(seq=rec.seq, reason=reason))
            continue
        try:
            body = parse_record_body(rec)
        except ValueError as exc:
            got.dead.append(DeadLetterNotice(seq=rec.seq, reason=str(exc)))
            continue
        if isinstance(body, OutboxDropped):
            got.dropped_at_edge += sum(body.counts.values())
            got.drops.append(
                {
                    "device_id": batch.device_id,
                    "seq": rec.seq,
                    "reason": body.reason,
                    "seq_ranges": [list(r) for r in body.seq_ranges],
                    "counts": body.counts,
                    "dropped_at": body.dropped_at,
                }
            )
            continue
        if body.store_id != batch.store_id:
            reason = f"record is for store {body.store_id!r}, batch is from {batch.store_id!r}"
            got.dead.append(DeadLetterNotice(seq=rec.seq, reason=reason))
        elif isinstance(body, Rollup):
            got.rollups.append((rec.seq, body))
        elif isinstance(body, HeatmapRollup):
            got.heatmaps.append((rec.seq, body))
        elif isinstance(body, Snapshot):
            got.snapshots.append(_snapshot_row(batch.device_id, rec.seq, body, received_at))
        elif isinstance(body, ShelfStatus):
            got.shelf_slots.extend(slot_rows(batch.device_id, rec.seq, body, received_at))
        else:
            got.events.append(_event_row(batch.device_id, rec.seq, body))
            if isinstance(body, AnalyticsEvent) and body.kind in (
                EventKind.ALERT_RAISED,
                EventKind.ALERT_CLEARED,
            ):
                got.alerts.append((rec.seq, body))
    return got


def _snapshot_row(device_id: str, seq: int, s: Snapshot, received_at: float) -> dict[str, Any]:
    data = s.image_bytes()
    return {
        "device_id": device_id,
        "seq": seq,
        "store_id": s.store_id,
        "camera_id": s.camera_id,
        "taken_at": s.taken_at,
        "purpose": s.purpose,
        "alert_rule": s.alert_rule,
        "media_type": s.media_type,
        "width": s.width,
        "height": s.height,
        "faces_blurred": s.faces_blurred,
        "heads_blurred": s.heads_blurred,
        "sha256": s.sha256,
        "size": len(data),
        "data": data,
        "received_at": received_at,
    }


def _event_row(device_id: str, seq: int, e: AnalyticsEvent) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "seq": seq,
        "kind": e.kind.value,
        "store_id": e.store_id,
        "camera_id": e.camera_id,
        "target_id": e.target_id,
        "occurred_at": e.occurred_at,
        "track_id": e.track_id,
        "payload": e.payload.model_dump(mode="json"),
    }


def _update_device(
    conn: Connection,
    batch: TelemetryBatch,
    received_at: float,
    new: int,
    duplicates: int,
    got: _NewRecords,
) -> None:
    d = DEVICES.c
    stmt = upsert(conn, DEVICES).values(
        device_id=batch.device_id,
        store_id=batch.store_id,
        first_seen=received_at,
        last_seen=received_at,
        last_batch_at=batch.sent_at,
        records_received=new,
        duplicates_received=duplicates,
        dead_lettered=len(got.dead),
        dropped_at_edge=got.dropped_at_edge,
        max_seq=batch.records[-1].seq if batch.records else 0,
    )
    ex = stmt.excluded
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[d.device_id],
            set_={
                "store_id": ex.store_id,
                "last_seen": greatest(conn, d.last_seen, ex.last_seen),
                "last_batch_at": greatest(conn, d.last_batch_at, ex.last_batch_at),
                "records_received": d.records_received + ex.records_received,
                "duplicates_received": d.duplicates_received + ex.duplicates_received,
                "dead_lettered": d.dead_lettered + ex.dead_lettered,
                "dropped_at_edge": d.dropped_at_edge + ex.dropped_at_edge,
                "max_seq": greatest(conn, d.max_seq, ex.max_seq),
            },
        )
    )
