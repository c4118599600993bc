"""Rollouts: a registry model to stores in waves, gated on the edges' reports, rolled back by
itself when a wave fails; and each device's desired state (the device twin).

States: ``running`` ⇄ ``paused``; ``running`` → ``completed`` (every wave passed),
``rolled_back`` (a wave failed its gate: that wave's devices get their previous model back as
desired state, later waves never start) or ``aborted`` (by a person: every device the rollout
reached gets its previous model back). A wave starts by setting the desired state of its
devices; the gate (``rollout_gates.evaluate_wave``) runs on every report of one of them and
from the periodic job. The desired state is per device and persists, so an edge that was
offline converges when it returns. Every change is in ``rollout_events``: who, what, when.
Times are UNIX seconds (hub clock), passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import (
    DEVICE_CREDENTIALS,
    DEVICE_TWINS,
    MODEL_BUNDLES,
    ROLLOUT_DEVICES,
    ROLLOUT_EVENTS,
    ROLLOUTS,
    STORES,
)
from cloud_hub.services.models_registry import download_path
from cloud_hub.services.rollout_gates import (
    DeviceProgress,
    Gates,
    Outcome,
    Targets,
    WavePlan,
    evaluate_wave,
    plan_waves,
    select_stores,
)
from cloud_hub.services.sql import upsert
from cloud_hub.services.twins import desired_config
from common.twin import DesiredModel, DesiredState, ReportedState, TwinStep

log = logging.getLogger(__name__)

HUB_ACTOR = "hub"
PENDING = "pending"


class RolloutState(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


ACTIVE = (RolloutState.RUNNING, RolloutState.PAUSED)


class RolloutError(ValueError):
    """A rollout request that cannot be carried out (the message says why)."""


class RolloutNotFound(RolloutError):
    """No such rollout, or no such model."""


class RolloutConflict(RolloutError):
    """The change does not apply to the rollout as it is, or devices are busy with another."""


class RolloutCreate(BaseModel):
    """A new rollout of a registry model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str
    model_version: str
    targets: Targets
    waves: WavePlan = Field(default_factory=WavePlan)
    gates: Gates = Field(default_factory=Gates)


class RolloutOut(BaseModel):
    """A rollout. Times: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid")

    id: int
    model_name: str
    model_version: str
    state: RolloutState
    waves: list[list[str]] = Field(description="store ids of each wave, in order")
    current_wave: int = Field(description="index into waves of the wave under way or last run")
    wave_started_at: float | None
    gates: Gates
    reason: str | None = Field(description="why it rolled back or was aborted")
    created_by: str
    created_at: float
    updated_at: float
    finished_at: float | None


class RolloutDeviceOut(BaseModel):
    """One device of a rollout and its last reported step."""

    model_config = ConfigDict(extra="forbid")

    device_id: str
    store_id: str
    wave: int
    from_name: str | None = Field(description="the model it ran before (null: its config's)")
    from_version: str | None
    step: str = Field(description="pending, or the last TwinStep it reported")
    reason: str | None
    latency_ms_before: float | None
    latency_ms_after: float | None
    detections_before: float | None = Field(description="per frame, previous model")
    detections_after: float | None = Field(description="per frame, new model")
    updated_at: float
    running_name: str | None = Field(description="the model it last said it runs")
    running_version: str | None


class RolloutEventOut(BaseModel):
    """One entry of the audit trail."""

    model_config = ConfigDict(extra="forbid")

    at: float
    actor: str = Field(description="an API key's name, a device id, or hub")
    action: str
    detail: str | None


class RolloutDetail(RolloutOut):
    """A rollout with its devices and audit trail."""

    devices: list[RolloutDeviceOut]
    events: list[RolloutEventOut]


class RolloutList(BaseModel):
    """Rollouts, newest first."""

    model_config = ConfigDict(extra="forbid")

    items: list[RolloutOut]


# -- desired state -----------------------------------------------------------------------------


def set_desired(
    conn: Connection,
    device_id: str,
    store_id: str,
    name: str | None,
    version: str | None,
    rollout_id: int | None,
    now: float,
) -> None:
    """Set a device's desired model (None: its config's), bumping its revision."""
    c = DEVICE_TWINS.c
    values = {
        "desired_name": name,
        "desired_version": version,
        "desired_rollout_id": rollout_id,
        "desired_at": now,
    }
    stmt = upsert(conn, DEVICE_TWINS).values(
        device_id=device_id, store_id=store_id, revision=1, **values
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[c.device_id], set_={**values, "revision": c.revision + 1}
        )
    )


def desired_state(conn: Connection, device_id: str, store_id: str) -> DesiredState:
    """The device's desired state: model and layout (``twins``), None and revision 0 when the
    hub never set one."""
    row = (
        conn.execute(select(DEVICE_TWINS).where(DEVICE_TWINS.c.device_id == device_id))
        .mappings()
        .first()
    )
    if row is None:
        return DesiredState(device_id=device_id, store_id=store_id)
    model = None
    if row["desired_name"] is not None:
        b = MODEL_BUNDLES.c
        bundle = (
            conn.execute(
                select(b.sha256, b.size).where(
                    b.name == row["desired_name"], b.version == row["desired_version"]
                )
            )
            .mappings()
            .one()
        )
        model = DesiredModel(
            name=row["desired_name"],
            version=row["desired_version"],
            sha256=bundle["sha256"],
            size=bundle["size"],
            download_path=download_path(row["desired_name"], row["desired_version"]),
        )
    return DesiredState(
        device_id=device_id,
        store_id=store_id,
        model=model,
        rollout_id=row["desired_rollout_id"],
        config=desired_config(conn, row),
        config_rollout_id=row["desired_config_rollout_id"],
        revision=row["revision"],
    )


# -- audit, reading ------------------------------------------------------------------------------


def _event(
    conn: Connection, rollout_id: int, actor: str, action: str, detail: str | None, now: float
) -> None:
    conn.execute(
        insert(ROLLOUT_EVENTS).values(
            rollout_id=rollout_id, at=now, actor=actor, action=action, detail=detail
        )
    )
    log.info("rollout %d: %s by %s%s", rollout_id, action, actor, f": {detail}" if detail else "")


def _out(row: RowMapping) -> RolloutOut:
    return RolloutOut(
        id=row["id"],
        model_name=row["model_name"],
        model_version=row["model_version"],
        state=RolloutState(row["state"]),
        waves=row["waves"],
        current_wave=row["current_wave"],
        wave_started_at=row["wave_started_at"],
        gates=Gates(
            max_latency_ratio=row["max_latency_ratio"],
            min_detection_ratio=row["min_detection_ratio"],
            wave_timeout_s=row["wave_timeout_s"],
        ),
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def _row(conn: Connection, rollout_id: int, lock: bool = False) -> RowMapping:
    q = select(ROLLOUTS).where(ROLLOUTS.c.id == rollout_id)
    row = conn.execute(q.with_for_update() if lock else q).mappings().first()
    if row is None:
        raise RolloutNotFound(f"rollout {rollout_id} not found")
    return row


def _devices(conn: Connection, rollout_id: int) -> list[RowMapping]:
    d = ROLLOUT_DEVICES.c
    return list(
        conn.execute(
            select(ROLLOUT_DEVICES).where(d.rollout_id == rollout_id).order_by(d.wave, d.device_id)
        )
        .mappings()
        .all()
    )


def get_rollout(conn: Connection, rollout_id: int) -> RolloutDetail:
    """A rollout with its devices and audit trail; RolloutNotFound."""
    base = _out(_row(conn, rollout_id))
    e = ROLLOUT_EVENTS.c
    events = conn.execute(
        select(ROLLOUT_EVENTS).where(e.rollout_id == rollout_id).order_by(e.id)
    ).mappings()
    devices = _devices(conn, rollout_id)
    t = DEVICE_TWINS.c
    running = {
        r.device_id: (r.reported_name, r.reported_version)
        for r in conn.execute(
            select(t.device_id, t.reported_name, t.reported_version).where(
                t.device_id.in_([d["device_id"] for d in devices])
            )
        )
    }
    return RolloutDetail(
        **base.model_dump(),
        devices=[
            RolloutDeviceOut(
                **{k: v for k, v in r.items() if k != "rollout_id"},
                running_name=running.get(r["device_id"], (None, None))[0],
                running_version=running.get(r["device_id"], (None, None))[1],
            )
            for r in devices
        ],
        events=[
            RolloutEventOut(at=r["at"], actor=r["actor"], action=r["action"], detail=r["detail"])
            for r in events
        ],
    )


def list_rollouts(conn: Connection, state: RolloutState | None = None) -> RolloutList:
    """Rollouts, newest first (optionally in one state)."""
    q = select(ROLLOUTS).order_by(ROLLOUTS.c.id.desc())
    if state is not None:
        q = q.where(ROLLOUTS.c.state == state.value)
    return RolloutList(items=[_out(r) for r in conn.execute(q).mappings().all()])


# -- creating and advancing ---------------------------------------------------------------------


def _enrolled(conn: Connection) -> dict[str, list[str]]:
    """Store id → its enrolled (unrevoked) device ids."""
    c = DEVICE_CREDENTIALS.c
    out: dict[str, list[str]] = {}
    rows = conn.execute(
        select(c.store_id, c.device_id).where(c.revoked_at.is_(None)).order_by(c.device_id)
    )
    for store_id, device_id in rows:
        out.setdefault(store_id, []).append(device_id)
    return out


def create_rollout(
    conn: Connection, request: RolloutCreate, *, actor: str, now: float
) -> RolloutDetail:
    """Plan and start a rollout: its first wave's devices get the model as desired state.

    Raises:
        RolloutNotFound: no such model. PlanError: bad targets or waves. RolloutConflict: a
            target device is in another running or paused rollout.
    """
    b = MODEL_BUNDLES.c
    found = conn.execute(
        select(b.name).where(b.name == request.model_name, b.version == request.model_version)
    ).first()
    if found is None:
        raise RolloutNotFound(f"no model {request.model_name} version {request.model_version}")
    enrolled = _enrolled(conn)
    groups = {s: g for s, g in conn.execute(select(STORES.c.store_id, STORES.c.group_name))}
    candidates = [(s, groups.get(s)) for s in sorted(enrolled)]
    stores = select_stores(
        candidates, request.targets, f"{request.model_name}\0{request.model_version}"
    )
    waves = plan_waves(stores, request.waves)
    devices = {d: (s, i) for i, wave in enumerate(waves) for s in wave for d in enrolled[s]}
    busy = _busy_devices(conn, set(devices))
    if busy:
        raise RolloutConflict(f"devices {busy} are in another running or paused rollout")
    twins = {
        r["device_id"]: r
        for r in conn.execute(
            select(DEVICE_TWINS).where(DEVICE_TWINS.c.device_id.in_(list(devices)))
        ).mappings()
    }
    g = request.gates
    rollout_id = conn.execute(
        insert(ROLLOUTS)
        .values(
            model_name=request.model_name,
            model_version=request.model_version,
            state=RolloutState.RUNNING.value,
            waves=waves,
            current_wave=0,
            wave_started_at=None,
            max_latency_ratio=g.max_latency_ratio,
            min_detection_ratio=g.min_detection_ratio,
            wave_timeout_s=g.wave_timeout_s,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        .returning(ROLLOUTS.c.id)
    ).scalar_one()
    if devices:
        conn.execute(
            insert(ROLLOUT_DEVICES),
            [
                {
                    "rollout_id": rollout_id,
                    "device_id": d,
                    "store_id": s,
                    "wave": w,
                    "from_name": twins[d]["desired_name"] if d in twins else None,
                    "from_version": twins[d]["desired_version"] if d in twins else None,
                    "step": PENDING,
                    "updated_at": now,
                }
                for d, (s, w) in sorted(devices.items())
            ],
        )
    _event(
        conn, rollout_id, actor, "created",
        f"model {request.model_name} {request.model_version}; {len(devices)} device(s) in "
        f"{len(waves)} wave(s): {waves}; gates {g.model_dump()}",
        now,
    )  # fmt: skip
    _start_wave(conn, rollout_id, 0, now)
    advance(conn, rollout_id, now)
    return get_rollout(conn, rollout_id)


def _busy_devices(conn: Connection, devices: set[str]) -> list[str]:
    d, r = ROLLOUT_DEVICES.c, ROLLOUTS.c
    rows = conn.execute(
        select(d.device_id)
        .join(ROLLOUTS, r.id == d.rollout_id)
        .where(r.state.in_([s.value for s in ACTIVE]), d.device_id.in_(list(devices)))
    )
    return sorted({x for (x,) in rows})


def _start_wave(conn: Connection, rollout_id: int, wave: int, now: float) -> None:
    row = _row(conn, rollout_id)
    conn.execute(
        update(ROLLOUTS)
        .where(ROLLOUTS.c.id == rollout_id)
        .values(current_wave=wave, wave_started_at=now, updated_at=now)
    )
    members = [r for r in _devices(conn, rollout_id) if r["wave"] == wave]
    for r in members:
        set_desired(
            conn, r["device_id"], r["store_id"], row["model_name"], row["model_version"],
            rollout_id, now,
        )  # fmt: skip
    _event(
        conn, rollout_id, HUB_ACTOR, "wave_started",
        f"wave {wave}: stores {row['waves'][wave]}, devices {[r['device_id'] for r in members]}",
        now,
    )  # fmt: skip


def _revert(conn: Connection, rollout_id: int, members: Sequence[RowMapping], now: float) -> None:
    """Give ``members`` their previous model back as desired state."""
    for r in members:
        set_desired(
            conn, r["device_id"], r["store_id"], r["from_name"], r["from_version"],
            rollout_id, now,
        )  # fmt: skip


def _finish(
    conn: Connection, rollout_id: int, state: RolloutState, reason: str | None, now: float
) -> None:
    conn.execute(
        update(ROLLOUTS)
        .where(ROLLOUTS.c.id == rollout_id)
        .values(state=state.value, reason=reason, updated_at=now, finished_at=now)
    )


def advance(conn: Connection, rollout_id: int, now: float) -> RolloutState:
    """Run the gate of a running rollout's current wave and act on it: start the next wave,
    complete, or roll the wave back and halt. Returns the state afterwards."""
    while True:
        row = _row(conn, rollout_id, lock=True)
        state = RolloutState(row["state"])
        if state is not RolloutState.RUNNING:
            return state
        wave = row["current_wave"]
        members = [r for r in _devices(conn, rollout_id) if r["wave"] == wave]
        progress = [
            DeviceProgress(
                device_id=r["device_id"],
                step=r["step"],
                reason=r["reason"],
                latency_ms_before=r["latency_ms_before"],
                latency_ms_after=r["latency_ms_after"],
                detections_before=r["detections_before"],
                detections_after=r["detections_after"],
            )
            for r in members
        ]
        gates = _out(row).gates
        verdict = evaluate_wave(progress, gates, row["wave_started_at"] or now, now)
        if verdict.outcome is Outcome.WAIT:
            return state
        if verdict.outcome is Outcome.FAIL:
            _revert(conn, rollout_id, members, now)
            _finish(conn, rollout_id, RolloutState.ROLLED_BACK, verdict.reason, now)
            _event(
                conn, rollout_id, HUB_ACTOR, "rolled_back",
                f"wave {wave} failed its gate: {verdict.reason}; its devices "
                f"{[r['device_id'] for r in members]} get their previous model back",
                now,
            )  # fmt: skip
            return RolloutState.ROLLED_BACK
        _event(conn, rollout_id, HUB_ACTOR, "wave_passed", f"wave {wave}", now)
        if wave + 1 >= len(row["waves"]):
            _finish(conn, rollout_id, RolloutState.COMPLETED, None, now)
            _event(conn, rollout_id, HUB_ACTOR, "completed", None, now)
            return RolloutState.COMPLETED
        _start_wave(conn, rollout_id, wave + 1, now)


def advance_all(conn: Connection, now: float) -> dict[int, RolloutState]:
    """Run the gates of every running rollout (the periodic job); id → state afterwards."""
    ids = conn.execute(
        select(ROLLOUTS.c.id).where(ROLLOUTS.c.state == RolloutState.RUNNING.value)
    ).scalars()
    return {i: advance(conn, i, now) for i in list(ids)}


# -- people --------------------------------------------------------------------------------------


def pause_rollout(conn: Connection, rollout_id: int, *, actor: str, now: float) -> RolloutDetail:
    """Stop advancing (devices keep their desired state); RolloutConflict unless running."""
    row = _row(conn, rollout_id, lock=True)
    if row["state"] != RolloutState.RUNNING:
        raise RolloutConflict(f"rollout {rollout_id} is {row['state']}, not running")
    conn.execute(
        update(ROLLOUTS)
        .where(ROLLOUTS.c.id == rollout_id)
        .values(state=RolloutState.PAUSED.value, updated_at=now)
    )
    _event(conn, rollout_id, actor, "paused", None, now)
    return get_rollout(conn, rollout_id)


def resume_rollout(conn: Connection, rollout_id: int, *, actor: str, now: float) -> RolloutDetail:
    """Go on from the current wave (its timeout counts afresh); RolloutConflict unless paused."""
    row = _row(conn, rollout_id, lock=True)
    if row["state"] != RolloutState.PAUSED:
        raise RolloutConflict(f"rollout {rollout_id} is {row['state']}, not paused")
    conn.execute(
        update(ROLLOUTS)
        .where(ROLLOUTS.c.id == rollout_id)
        .values(state=RolloutState.RUNNING.value, wave_started_at=now, updated_at=now)
    )
    _event(conn, rollout_id, actor, "resumed", None, now)
    advance(conn, rollout_id, now)
    return get_rollout(conn, rollout_id)


def abort_rollout(
    conn: Connection, rollout_id: int, *, actor: str, now: float, reason: str | None = None
) -> RolloutDetail:
    """Halt and give every device of the waves started so far its previous model back;
    RolloutConflict unless running or paused."""
    row = _row(conn, rollout_id, lock=True)
    if row["state"] not in ACTIVE:
        raise RolloutConflict(f"rollout {rollout_id} is {row['state']} already")
    reached = [r for r in _devices(conn, rollout_id) if r["wave"] <= row["current_wave"]]
    _revert(conn, rollout_id, reached, now)
    _finish(conn, rollout_id, RolloutState.ABORTED, reason or f"aborted by {actor}", now)
    _event(
        conn, rollout_id, actor, "aborted",
        f"{reason or 'no reason given'}; devices {[r['device_id'] for r in reached]} get their "
        "previous model back",
        now,
    )  # fmt: skip
    return get_rollout(conn, rollout_id)


# -- devices -------------------------------------------------------------------------------------


def record_report(
    conn: Connection, device_id: str, store_id: str, report: ReportedState, now: float
) -> None:
    """Keep a device's report: its twin's reported model, its rollout step and smoke test
    numbers (when the step is about the rollout's model), an audit entry for a failure; then
    run that rollout's gate."""
    c = DEVICE_TWINS.c
    reported = {
        "reported_name": report.running_name,
        "reported_version": report.running_version,
        "reported_step": report.step.value,
        "reported_at": now,
    }
    stmt = upsert(conn, DEVICE_TWINS).values(
        device_id=device_id, store_id=store_id, revision=0, desired_at=now, **reported
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=[c.device_id], set_=reported))
    if report.rollout_id is None:
        return
    try:
        row = _row(conn, report.rollout_id, lock=True)
    except RolloutNotFound:
        log.warning("device %s reported on unknown rollout %s", device_id, report.rollout_id)
        return
    d = ROLLOUT_DEVICES.c
    mine = d.rollout_id == report.rollout_id, d.device_id == device_id
    if (report.model_name, report.model_version) == (row["model_name"], row["model_version"]):
        values: dict[str, object] = {"step": report.step.value, "updated_at": now}
        if report.step is TwinStep.FAILED:
            values["reason"] = report.reason
        m = report.metrics
        if m is not None:
            values.update(
                latency_ms_before=m.latency_ms_before,
                latency_ms_after=m.latency_ms_after,
                detections_before=m.detections_per_frame_before,
                detections_after=m.detections_per_frame_after,
            )
        conn.execute(update(ROLLOUT_DEVICES).where(*mine).values(**values))
    if report.step is TwinStep.FAILED or row["state"] not in ACTIVE:
        what = f"{report.model_name} {report.model_version}"
        detail = f"{report.step.value} {what}" + (f": {report.reason}" if report.reason else "")
        _event(conn, report.rollout_id, f"device:{device_id}", "device_report", detail, now)
    advance(conn, report.rollout_id, now)
