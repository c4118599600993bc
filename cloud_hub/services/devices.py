"""A device's sync state as the hub holds it (what an edge that lost its outbox asks for)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.engine import Connection

from cloud_hub.models import DEVICES


class DeviceSyncState(BaseModel):
    """Totals of one device's records at the hub. Times are UNIX seconds UTC.

    ``max_seq`` is the highest seq the hub holds: an edge that lost its outbox numbers new
    records above it. ``last_seen`` is the hub clock at the last batch, ``last_batch_at`` that
    batch's ``sent_at`` (edge clock).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str
    store_id: str
    max_seq: int
    records_received: int
    duplicates_received: int
    dead_lettered: int
    dropped_at_edge: int
    first_seen: float
    last_seen: float
    last_batch_at: float


def device_sync_state(conn: Connection, device_id: str) -> DeviceSyncState | None:
    """The sync state of ``device_id``, or None when the hub has never heard from it."""
    row = conn.execute(select(DEVICES).where(DEVICES.c.device_id == device_id)).first()
    return None if row is None else DeviceSyncState.model_validate(dict(row._mapping))
