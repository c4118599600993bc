"""Shelf inventory status per store, shelf and slot: written by ingest, read by the API.

The edges send a ``ShelfStatus`` (``common.telemetry``) for a shelf when one of its slots
changes and at every rollup interval. Ingest keeps one ``shelf_slots`` row per slot, the status
with the newest ``observed_at`` (ties: the higher seq): a late or re-sent status never
overwrites a newer one, and applying the same statuses in any order ends in the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from cloud_hub.models import SHELF_SLOTS
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.sql import lock_order, upsert
from common.telemetry import ShelfStatus

SlotState = Literal["stocked", "low", "empty", "unknown"]

_KEY = ("store_id", "camera_id", "shelf_id", "slot_id")


class SlotStatus(BaseModel):
    """The latest known state of one shelf slot."""

    model_config = ConfigDict(extra="forbid")

    store_id: str
    camera_id: str
    shelf_id: str = Field(description="the shelf zone's id")
    slot_id: str
    state: SlotState = Field(
        description="stocked, empty, or unknown (not yet seen long enough); low is reserved "
        "for slots that report a partial fill (the edges report none yet)"
    )
    product: str | None = Field(description="product id the slot is planned for, if known")
    seen_product: str | None = Field(
        None, description="product id the edge's classifier sees in the slot, if it runs one"
    )
    misplaced: bool = Field(False, description="seen_product differs from the planned product")
    state_since: datetime | None = Field(None, description="when the current state began")
    empty_since: datetime | None = Field(description="when the slot was first seen empty")
    updated_at: datetime = Field(description="when the state was last observed")


class InventoryPage(PageInfo):
    """Slots by ``(store_id, camera_id, shelf_id, slot_id)``."""

    items: list[SlotStatus]


def slot_rows(
    device_id: str, seq: int, status: ShelfStatus, received_at: float
) -> list[dict[str, Any]]:
    """The ``shelf_slots`` rows of one status record (one per slot)."""
    return [
        {
            "store_id": status.store_id,
            "camera_id": status.camera_id,
            "shelf_id": status.shelf_id,
            "slot_id": s.slot_id,
            "device_id": device_id,
            "seq": seq,
            "state": s.state,
            "product": s.product,
            "seen_product": s.seen_product,
            "state_since": s.since,
            "empty_since": s.empty_since,
            "observed_at": status.observed_at,
            "updated_at": received_at,
        }
        for s in status.slots
    ]


def apply_slot_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert slot rows (inside the caller's transaction): per slot the newest observation
    wins, within ``rows`` and against what is stored."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = tuple(r[k] for k in _KEY)
        old = latest.get(key)
        if old is None or (r["observed_at"], r["seq"]) > (old["observed_at"], old["seq"]):
            latest[key] = r
    if not latest:
        return
    # One row per key (an upsert may touch a row once), in key order: every transaction locks
    # shared rows in the same order, so two ingest workers cannot deadlock.
    ordered = [latest[k] for k in sorted(latest)]
    stmt = upsert(conn, SHELF_SLOTS).values(ordered)
    ex, t = stmt.excluded, SHELF_SLOTS.c
    newer = (ex.observed_at > t.observed_at) | (
        (ex.observed_at == t.observed_at) & (ex.seq > t.seq)
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t[k] for k in _KEY],
            set_={c.name: ex[c.name] for c in SHELF_SLOTS.columns if c.name not in _KEY},
            where=newer,
        )
    )


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def inventory_status(
    conn: Connection, store_ids: frozenset[str] | None, limit: int, offset: int
) -> InventoryPage:
    """Slot states of the stores ``store_ids`` (None: all), in key order, one page."""
    c = SHELF_SLOTS.c
    where = [] if store_ids is None else [c.store_id.in_(sorted(store_ids))]
    total = conn.execute(select(func.count()).select_from(SHELF_SLOTS).where(*where)).scalar_one()
    rows = conn.execute(
        select(SHELF_SLOTS)
        .where(*where)
        .order_by(*lock_order(conn, [c.store_id, c.camera_id, c.shelf_id, c.slot_id]))
        .limit(limit)
        .offset(offset)
    ).mappings()
    items = [
        SlotStatus(
            store_id=r["store_id"],
            camera_id=r["camera_id"],
            shelf_id=r["shelf_id"],
            slot_id=r["slot_id"],
            state=r["state"],
            product=r["product"],
            seen_product=r["seen_product"],
            misplaced=(
                r["state"] == "stocked"
                and r["product"] is not None
                and r["seen_product"] not in (None, r["product"])
            ),
            state_since=_utc(r["state_since"]),
            empty_since=_utc(r["empty_since"]),
            updated_at=datetime.fromtimestamp(r["observed_at"], UTC),
        )
        for r in rows
    ]
    return InventoryPage(items=items, **page_info(int(total), limit, offset).model_dump())
