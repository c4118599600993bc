"""Snapshots at the hub: listing, reading one image, and retention.

The images were made safe by the edge's privacy gate before they left the store; the hub only
stores, serves and deletes them (it never decodes or re-encodes an image).
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Connection, delete, func, select

from cloud_hub.models import SNAPSHOTS

log = logging.getLogger(__name__)


class SnapshotInfo(BaseModel):
    """One stored snapshot, without its bytes (``image_url`` serves them)."""

    device_id: str
    seq: int
    store_id: str
    camera_id: str
    taken_at: float = Field(description="UNIX seconds UTC")
    purpose: str = Field(description="alert_snapshot or heatmap")
    alert_rule: str | None
    media_type: str
    width: int
    height: int
    faces_blurred: int
    heads_blurred: int
    sha256: str
    size: int
    image_url: str


class SnapshotPage(BaseModel):
    """A page of snapshots, newest first."""

    items: list[SnapshotInfo]
    total: int
    limit: int
    offset: int


class SnapshotImage(BaseModel):
    """The stored bytes of one snapshot."""

    media_type: str
    sha256: str
    data: bytes


def list_snapshots(
    conn: Connection,
    *,
    store_ids: list[str] | None,
    camera_id: str | None = None,
    purpose: str | None = None,
    start: float | None = None,
    end: float | None = None,
    limit: int = 50,
    offset: int = 0,
    url_prefix: str = "/api/v1/snapshots",
) -> SnapshotPage:
    """Snapshots newest first (ties by device and seq), filtered; ``store_ids`` None = all."""
    c = SNAPSHOTS.c
    where: list[ColumnElement[bool]] = []
    if store_ids is not None:
        where.append(c.store_id.in_(store_ids))
    if camera_id is not None:
        where.append(c.camera_id == camera_id)
    if purpose is not None:
        where.append(c.purpose == purpose)
    if start is not None:
        where.append(c.taken_at >= start)
    if end is not None:
        where.append(c.taken_at < end)
    cols = [col for col in SNAPSHOTS.columns if col.name != "data"]
    rows = conn.execute(
        select(*cols)
        .where(*where)
        .order_by(c.taken_at.desc(), c.device_id, c.seq)
        .limit(limit)
        .offset(offset)
    ).mappings()
    total = conn.execute(select(func.count()).select_from(SNAPSHOTS).where(*where)).scalar_one()
    items = [
        SnapshotInfo(
            **{k: v for k, v in r.items() if k != "received_at"},
            image_url=f"{url_prefix}/{r['device_id']}/{r['seq']}/image",
        )
        for r in rows
    ]
    return SnapshotPage(items=items, total=int(total), limit=limit, offset=offset)


def read_snapshot(conn: Connection, device_id: str, seq: int) -> tuple[str, SnapshotImage] | None:
    """(store_id, image) of one snapshot, or None."""
    c = SNAPSHOTS.c
    row = conn.execute(
        select(c.store_id, c.media_type, c.sha256, c.data).where(
            c.device_id == device_id, c.seq == seq
        )
    ).first()
    if row is None:
        return None
    return row.store_id, SnapshotImage(media_type=row.media_type, sha256=row.sha256, data=row.data)


def delete_expired_snapshots(conn: Connection, max_age_s: float, now: float) -> int:
    """Delete snapshots taken more than ``max_age_s`` seconds before ``now``; how many."""
    if max_age_s <= 0:
        raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
    result = conn.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.taken_at < now - max_age_s))
    n = int(result.rowcount or 0)
    if n:
        log.info("retention: deleted %d snapshot(s) older than %.0f days", n, max_age_s / 86400)
    return n
