"""The hub's device-offline rule: a device is offline when its MQTT status says so (the last
will, or a clean stop) and no batch came after it, or when nothing was heard from it (no batch,
no ``online`` status) for ``offline_after_s``. It is back with the next batch or ``online``.

One live ``device_offline`` alert per device; it resolves itself (by ``hub``) when the device
is back. Its occurrence is "offline since T", so an alert a person resolved while the device
stays away is not opened again; the next time the device goes away is a new occurrence.
``offline_since`` is the pure rule; ``check_devices`` applies it to the database.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import case, select
from sqlalchemy.engine import Connection

from cloud_hub.models import ALERTS, DEVICE_PRESENCE, DEVICES, VIDEO_JOBS
from cloud_hub.services.alerts import AlertKind, NewAlert, open_alert, resolve_alert
from cloud_hub.services.sql import upsert
from cloud_hub.services.stores import ensure_store

log = logging.getLogger(__name__)

RULE_ID = "device_offline"


class DeviceStatus(StrEnum):
    """What a device publishes on its retained status topic."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Presence:
    """What the hub knows of a device: its last batch (hub clock) and its last MQTT status and
    since when (hub clock, the status's first sighting). UNIX s; None = never."""

    device_id: str
    store_id: str
    last_batch_at: float | None
    status: DeviceStatus | None
    status_at: float | None


@dataclass(frozen=True)
class Offline:
    """A device's absence: since when (UNIX s) and why (for people)."""

    since: float
    reason: str


@dataclass
class OfflineCheck:
    """What one check changed."""

    opened: int = 0
    resolved: int = 0


def offline_since(p: Presence, now: float, offline_after_s: float) -> Offline | None:
    """Whether the device counts as offline at ``now`` and since when; None while online."""
    if (
        p.status is DeviceStatus.OFFLINE
        and p.status_at is not None
        and (p.last_batch_at is None or p.status_at >= p.last_batch_at)
    ):
        return Offline(p.status_at, "its MQTT status is offline (last will or clean stop)")
    heard = [t for t in (p.last_batch_at, _online_at(p)) if t is not None]
    if not heard:
        return None
    last = max(heard)
    if now - last > offline_after_s:
        return Offline(last, f"nothing heard from it for more than {offline_after_s:g} s")
    return None


def back_since(p: Presence, raised_at: float) -> float | None:
    """When the device was first heard from after its offline alert was raised at
    ``raised_at`` (a batch or an ``online`` status), or None if it has not been."""
    after = [t for t in (p.last_batch_at, _online_at(p)) if t is not None and t > raised_at]
    return min(after) if after else None


def _online_at(p: Presence) -> float | None:
    return p.status_at if p.status is DeviceStatus.ONLINE else None


def active_key(device_id: str) -> str:
    """The subject key of a device's live offline alert."""
    return f"{RULE_ID}/{device_id}"


def record_status(
    conn: Connection, store_id: str, device_id: str, status: DeviceStatus, now: float
) -> None:
    """Store a device's MQTT status. ``status_at`` changes only when the status does: a
    retained message seen again (a worker re-subscribing) is not news. A store first heard of
    this way is registered, as a first batch would register it."""
    p = DEVICE_PRESENCE.c
    stmt = upsert(conn, DEVICE_PRESENCE).values(
        device_id=device_id, store_id=store_id, status=status.value, status_at=now, updated_at=now
    )
    ex = stmt.excluded
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[p.device_id],
            set_={
                "store_id": ex.store_id,
                "status": ex.status,
                "status_at": case((p.status == ex.status, p.status_at), else_=ex.status_at),
                "updated_at": ex.updated_at,
            },
        )
    )
    ensure_store(conn, store_id, now)


def presences(conn: Connection, device_ids: Sequence[str] | None = None) -> list[Presence]:
    """What the hub knows of every device (or of ``device_ids``): batches and MQTT status."""
    d, p = DEVICES.c, DEVICE_PRESENCE.c
    got: dict[str, Presence] = {}
    # The hub's virtual upload devices (video jobs) send only while a job runs: never offline.
    virtual = select(VIDEO_JOBS.c.device_id).where(VIDEO_JOBS.c.device_id.is_not(None))
    q = select(d.device_id, d.store_id, d.last_seen).where(d.device_id.not_in(virtual))
    if device_ids is not None:
        q = q.where(d.device_id.in_(list(device_ids)))
    for r in conn.execute(q):
        got[r.device_id] = Presence(r.device_id, r.store_id, r.last_seen, None, None)
    q2 = select(p.device_id, p.store_id, p.status, p.status_at)
    if device_ids is not None:
        q2 = q2.where(p.device_id.in_(list(device_ids)))
    for s in conn.execute(q2):
        known = got.get(s.device_id)
        got[s.device_id] = Presence(
            s.device_id,
            known.store_id if known else s.store_id,
            known.last_batch_at if known else None,
            DeviceStatus(s.status),
            s.status_at,
        )
    return [got[k] for k in sorted(got)]


def check_devices(
    conn: Connection, now: float, offline_after_s: float, device_ids: Sequence[str] | None = None
) -> OfflineCheck:
    """Open an offline alert for each device that is away and has none, resolve the live one
    of each device that is back (all devices, or ``device_ids``). ``now``: hub clock."""
    out = OfflineCheck()
    a = ALERTS.c
    live_q = select(a.id, a.device_id, a.raised_at).where(
        a.kind == AlertKind.DEVICE_OFFLINE.value, a.active_key.is_not(None)
    )
    if device_ids is not None:
        live_q = live_q.where(a.device_id.in_(list(device_ids)))
    live = {r.device_id: (int(r.id), float(r.raised_at)) for r in conn.execute(live_q)}
    for p in presences(conn, device_ids):
        away = offline_since(p, now, offline_after_s)
        current = live.get(p.device_id)
        if current is not None:
            back_at = back_since(p, current[1])
            if back_at is not None:  # back (and maybe gone again since: a new occurrence)
                resolve_alert(conn, current[0], "hub", None, now, cleared_at=back_at)
                out.resolved += 1
                current = None
        if away is not None and current is None:
            since = datetime.fromtimestamp(away.since, UTC).isoformat(timespec="seconds")
            opened = open_alert(
                conn,
                NewAlert(
                    store_id=p.store_id,
                    kind=AlertKind.DEVICE_OFFLINE,
                    source="hub",
                    rule_id=RULE_ID,
                    raised_at=away.since,
                    message=f"device {p.device_id} offline since {since}: {away.reason}",
                    dedup_key=f"{RULE_ID}/{p.device_id}/{away.since!r}",
                    active_key=active_key(p.device_id),
                    device_id=p.device_id,
                ),
                now,
            )
            out.opened += opened is not None
    return out
