"""Alerts at the hub: opened by edge rules (at ingest) and hub rules (device offline, store
thresholds), acknowledged and resolved by people or resolved by their rule.

States: ``open`` → ``acknowledged`` → ``resolved`` (or ``open`` → ``resolved``). An edge's
``alert_raised`` opens an alert in the ingest transaction, once per (device, camera, rule,
raise time) whatever the replays; its ``alert_cleared`` marks the latest live alert of that
rule cleared and resolved by the edge. Hub rules hold one live alert per subject
(``active_key``) and resolve it themselves when their condition ends; an alert a person
resolved is not reopened for the same occurrence. Every change queues the matching webhook
deliveries in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import ALERTS, SNAPSHOTS
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.sql import upsert
from cloud_hub.services.webhooks import WebhookEvent, enqueue_event
from common.telemetry import AlertPayload, AnalyticsEvent, EventKind

log = logging.getLogger(__name__)

SNAPSHOT_MATCH_S = 2.0  # an alert snapshot's taken_at lies this close to its alert's raise


class AlertState(StrEnum):
    """Where an alert stands."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertKind(StrEnum):
    """Which rule raised an alert."""

    EDGE_RULE = "edge_rule"  # an alert rule of an edge camera (queue too long, ...)
    DEVICE_OFFLINE = "device_offline"  # hub: MQTT last will, or no batch for offline_after_s
    STORE_THRESHOLD = "store_threshold"  # hub: a store threshold rule on the rollups


class AlertConflictError(ValueError):
    """The change does not apply to the alert as it is (acknowledging a resolved alert)."""


class AlertOut(BaseModel):
    """An alert as the API and webhooks show it (times UTC)."""

    model_config = ConfigDict(extra="forbid")

    id: int
    store_id: str
    camera_id: str | None
    device_id: str | None
    target_id: str | None = Field(description="line, zone or camera the rule watches")
    source: str = Field(description="edge or hub")
    kind: AlertKind
    rule_id: str
    metric: str | None
    op: str | None
    threshold: float | None
    value: float | None = Field(description="the value that raised it")
    message: str
    state: AlertState
    raised_at: datetime
    cleared_at: datetime | None = Field(description="when its condition ended, if it has")
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="name of the API key that acknowledged")
    acknowledged_by_key_id: int | None
    resolved_at: datetime | None
    resolved_by: str | None = Field(description="an API key's name, or edge or hub (its rule)")
    resolved_by_key_id: int | None
    updated_at: datetime
    snapshot_url: str | None = Field(description="the edge's alert snapshot, if one came")


class AlertPage(PageInfo):
    """Alerts, newest raise first (ties by id, newest first)."""

    items: list[AlertOut]


@dataclass(frozen=True)
class NewAlert:
    """What opening an alert needs; ``dedup_key`` names the occurrence, ``active_key`` (hub
    rules) the subject that may hold one live alert at a time."""

    store_id: str
    kind: AlertKind
    source: str
    rule_id: str
    raised_at: float
    message: str
    dedup_key: str
    active_key: str | None = None
    camera_id: str | None = None
    device_id: str | None = None
    target_id: str | None = None
    metric: str | None = None
    op: str | None = None
    threshold: float | None = None
    value: float | None = None


@dataclass(frozen=True)
class AlertFilter:
    """List filters; ``store_ids`` None = every store. Times are UNIX s on ``raised_at``."""

    store_ids: Sequence[str] | None
    camera_id: str | None = None
    kind: AlertKind | None = None
    rule_id: str | None = None
    state: AlertState | None = None
    start: float | None = None
    end: float | None = None


# -- opening and changing ----------------------------------------------------------------------


def open_alert(conn: Connection, new: NewAlert, now: float) -> AlertOut | None:
    """Open ``new`` unless its occurrence is known or its subject has a live alert; the alert
    opened, or None. ``now`` is the hub clock (UNIX s)."""
    row = {
        **asdict(new),
        "kind": new.kind.value,
        "state": AlertState.OPEN.value,
        "updated_at": now,
    }
    stmt = upsert(conn, ALERTS).values(row).on_conflict_do_nothing().returning(ALERTS.c.id)
    new_id = conn.execute(stmt).scalar()
    if new_id is None:
        return None
    alert = get_alert(conn, int(new_id))
    assert alert is not None
    log.info("alert %d opened: store %s %s %s", alert.id, new.store_id, new.kind, new.message)
    enqueue_event(conn, WebhookEvent.ALERT_OPENED, alert.store_id, alert.id, alert, now)
    return alert


def acknowledge_alert(
    conn: Connection, alert_id: int, by: str, key_id: int | None, now: float
) -> AlertOut | None:
    """Acknowledge an open alert (one already acknowledged is returned as it is); None when
    there is no such alert.

    Raises:
        AlertConflictError: the alert is resolved.
    """
    c = ALERTS.c
    done = conn.execute(
        update(ALERTS)
        .where(c.id == alert_id, c.state == AlertState.OPEN.value)
        .values(
            state=AlertState.ACKNOWLEDGED.value,
            acknowledged_at=now,
            acknowledged_by=by,
            acknowledged_by_key_id=key_id,
            updated_at=now,
        )
    )
    alert = get_alert(conn, alert_id)
    if alert is None:
        return None
    if done.rowcount:
        log.info("alert %d acknowledged by %s", alert_id, by)
        enqueue_event(conn, WebhookEvent.ALERT_ACKNOWLEDGED, alert.store_id, alert_id, alert, now)
    elif alert.state is AlertState.RESOLVED:
        raise AlertConflictError(f"alert {alert_id} is resolved; there is nothing to acknowledge")
    return alert


def resolve_alert(
    conn: Connection,
    alert_id: int,
    by: str,
    key_id: int | None,
    now: float,
    cleared_at: float | None = None,
) -> AlertOut | None:
    """Resolve a live alert (a resolved one is returned as it is); None when there is none.
    ``by`` is an API key's name (``key_id`` its id), or ``edge``/``hub`` when the rule's
    condition ended at ``cleared_at``."""
    c = ALERTS.c
    values: dict[str, object] = {
        "state": AlertState.RESOLVED.value,
        "active_key": None,
        "resolved_at": now,
        "resolved_by": by,
        "resolved_by_key_id": key_id,
        "updated_at": now,
    }
    if cleared_at is not None:
        values["cleared_at"] = cleared_at
    done = conn.execute(
        update(ALERTS)
        .where(c.id == alert_id, c.state != AlertState.RESOLVED.value)
        .values(**values)
    )
    alert = get_alert(conn, alert_id)
    if alert is not None and done.rowcount:
        log.info("alert %d resolved by %s", alert_id, by)
        enqueue_event(conn, WebhookEvent.ALERT_RESOLVED, alert.store_id, alert_id, alert, now)
    return alert


def prune_alerts(conn: Connection, resolved_before: float) -> int:
    """Delete alerts resolved before ``resolved_before`` (UNIX s); live ones always stay.
    Returns how many went."""
    c = ALERTS.c
    done = conn.execute(
        delete(ALERTS).where(c.state == AlertState.RESOLVED.value, c.resolved_at < resolved_before)
    )
    return int(done.rowcount)


def live_alert_id(conn: Connection, active_key: str) -> tuple[int, float] | None:
    """(id, raised_at) of the live alert holding ``active_key``, or None."""
    c = ALERTS.c
    row = conn.execute(select(c.id, c.raised_at).where(c.active_key == active_key)).first()
    return None if row is None else (int(row.id), float(row.raised_at))


# -- edge alerts (ingest) ----------------------------------------------------------------------


def apply_edge_alerts(
    conn: Connection,
    device_id: str,
    events: Sequence[tuple[int, AnalyticsEvent]],
    received_at: float,
) -> None:
    """Open an alert per new ``alert_raised`` and clear one per ``alert_cleared``, in seq
    order, inside the ingest transaction. ``received_at`` is the hub clock (UNIX s)."""
    for seq, e in sorted(events, key=lambda se: se[0]):
        p = e.payload
        assert isinstance(p, AlertPayload)
        if e.kind is EventKind.ALERT_RAISED:
            open_alert(
                conn,
                NewAlert(
                    store_id=e.store_id,
                    kind=AlertKind.EDGE_RULE,
                    source="edge",
                    rule_id=p.rule_id,
                    raised_at=e.occurred_at,
                    message=(
                        f"{p.metric} of {e.target_id} on camera {e.camera_id} is {p.value:g} "
                        f"({p.op} {p.threshold:g})"
                    ),
                    dedup_key=f"edge/{device_id}/{e.camera_id}/{p.rule_id}/{e.occurred_at!r}",
                    camera_id=e.camera_id,
                    device_id=device_id,
                    target_id=e.target_id,
                    metric=p.metric,
                    op=p.op,
                    threshold=p.threshold,
                    value=p.value,
                ),
                received_at,
            )
        elif e.kind is EventKind.ALERT_CLEARED:
            _clear_edge_alert(conn, device_id, seq, e, p, received_at)


def _clear_edge_alert(
    conn: Connection,
    device_id: str,
    seq: int,
    e: AnalyticsEvent,
    p: AlertPayload,
    received_at: float,
) -> None:
    c = ALERTS.c
    row = conn.execute(
        select(c.id)
        .where(
            c.source == "edge",
            c.device_id == device_id,
            c.camera_id == e.camera_id,
            c.rule_id == p.rule_id,
            c.raised_at <= e.occurred_at,
            c.cleared_at.is_(None),
        )
        .order_by(c.raised_at.desc(), c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        log.info(
            "device %s seq %d: rule %s cleared on camera %s with no alert raised before it",
            device_id, seq, p.rule_id, e.camera_id,
        )  # fmt: skip
        return
    # Resolved by a person already: keep who resolved it, note when the condition ended.
    conn.execute(update(ALERTS).where(c.id == row.id).values(cleared_at=e.occurred_at))
    resolve_alert(conn, int(row.id), "edge", None, received_at, cleared_at=e.occurred_at)


# -- reading -----------------------------------------------------------------------------------


def get_alert(conn: Connection, alert_id: int) -> AlertOut | None:
    """The alert, or None."""
    row = conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id)).mappings().first()
    return None if row is None else _with_snapshots(conn, [row])[0]


def list_alerts(conn: Connection, f: AlertFilter, limit: int, offset: int) -> AlertPage:
    """Alerts matching ``f``, newest raise first."""
    c = ALERTS.c
    where: list[ColumnElement[bool]] = []
    if f.store_ids is not None:
        where.append(c.store_id.in_(list(f.store_ids)))
    if f.camera_id is not None:
        where.append(c.camera_id == f.camera_id)
    if f.kind is not None:
        where.append(c.kind == f.kind.value)
    if f.rule_id is not None:
        where.append(c.rule_id == f.rule_id)
    if f.state is not None:
        where.append(c.state == f.state.value)
    if f.start is not None:
        where.append(c.raised_at >= f.start)
    if f.end is not None:
        where.append(c.raised_at < f.end)
    total = conn.execute(select(func.count()).select_from(ALERTS).where(*where)).scalar_one()
    rows = (
        conn.execute(
            select(ALERTS)
            .where(*where)
            .order_by(c.raised_at.desc(), c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        .mappings()
        .all()
    )
    return AlertPage(
        items=_with_snapshots(conn, rows), **page_info(total, limit, offset).model_dump()
    )


def _with_snapshots(
    conn: Connection, rows: Sequence[RowMapping], url_prefix: str = "/api/v1/snapshots"
) -> list[AlertOut]:
    """The rows as AlertOut, each edge alert with the URL of its alert snapshot if the edge
    sent one (same device, camera and rule, taken within SNAPSHOT_MATCH_S of the raise)."""
    edge = [r for r in rows if r["source"] == "edge" and r["device_id"] is not None]
    found: dict[int, str] = {}
    if edge:
        s = SNAPSHOTS.c
        lo = min(r["raised_at"] for r in edge) - SNAPSHOT_MATCH_S
        hi = max(r["raised_at"] for r in edge) + SNAPSHOT_MATCH_S
        snaps = conn.execute(
            select(s.device_id, s.seq, s.camera_id, s.alert_rule, s.taken_at).where(
                s.device_id.in_(sorted({r["device_id"] for r in edge})),
                s.purpose == "alert_snapshot",
                s.taken_at >= lo,
                s.taken_at <= hi,
            )
        ).all()
        for r in edge:
            best = min(
                (
                    sn
                    for sn in snaps
                    if (sn.device_id, sn.camera_id, sn.alert_rule)
                    == (r["device_id"], r["camera_id"], r["rule_id"])
                    and abs(sn.taken_at - r["raised_at"]) <= SNAPSHOT_MATCH_S
                ),
                key=lambda sn: abs(sn.taken_at - r["raised_at"]),
                default=None,
            )
            if best is not None:
                found[r["id"]] = f"{url_prefix}/{best.device_id}/{best.seq}/image"
    return [_out(r, found.get(r["id"])) for r in rows]


def _out(row: RowMapping, snapshot_url: str | None) -> AlertOut:
    def t(name: str) -> datetime | None:
        v = row[name]
        return None if v is None else datetime.fromtimestamp(v, UTC)

    raised, updated = t("raised_at"), t("updated_at")
    assert raised is not None and updated is not None
    return AlertOut(
        id=row["id"],
        store_id=row["store_id"],
        camera_id=row["camera_id"],
        device_id=row["device_id"],
        target_id=row["target_id"],
        source=row["source"],
        kind=AlertKind(row["kind"]),
        rule_id=row["rule_id"],
        metric=row["metric"],
        op=row["op"],
        threshold=row["threshold"],
        value=row["value"],
        message=row["message"],
        state=AlertState(row["state"]),
        raised_at=raised,
        cleared_at=t("cleared_at"),
        acknowledged_at=t("acknowledged_at"),
        acknowledged_by=row["acknowledged_by"],
        acknowledged_by_key_id=row["acknowledged_by_key_id"],
        resolved_at=t("resolved_at"),
        resolved_by=row["resolved_by"],
        resolved_by_key_id=row["resolved_by_key_id"],
        updated_at=updated,
        snapshot_url=snapshot_url,
    )
