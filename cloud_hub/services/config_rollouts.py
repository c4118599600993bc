"""Config rollouts: one layout version of a store to the store's devices, the canary device
first, gated on the edges' reports, rolled back by itself when the agent cannot run with it.

States: ``running`` → ``completed`` (every device reported ``applied``: the version becomes the
store's current one), ``rolled_back`` (a device reported ``failed``, or a wave timed out) or
``aborted`` (by a person). Rolling back or aborting gives every device the rollout reached
(every wave started so far, the canary included) its previous desired layout again, with a
higher twin revision. Waves: the store's first enrolled device alone, then all the others. A
wave starts by setting its devices' desired layout; its gate (``evaluate_wave``, pure) runs on
every report of one of them and from the periodic job. One config rollout runs per store at a
time. Every change is in ``config_rollout_events``: who, what, when. Times are UNIX seconds
(hub clock), passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from cloud_hub.models import (
    CONFIG_ROLLOUT_DEVICES,
    CONFIG_ROLLOUT_EVENTS,
    CONFIG_ROLLOUTS,
    DEVICE_CREDENTIALS,
    DEVICE_TWINS,
    STORE_CONFIGS,
)
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.config_rollout_reads import (
    ConfigRolloutConflict,
    ConfigRolloutDetail,
    ConfigRolloutNotFound,
    ConfigRolloutState,
    current_version,
    get_config_rollout,
    list_config_rollouts,
    rollout_devices,
    rollout_row,
)
from cloud_hub.services.rollout_gates import Outcome, Verdict
from cloud_hub.services.twins import last_config_report, record_reported_config, set_desired_config
from common.twin import ConfigReport, ConfigStep

log = logging.getLogger(__name__)

HUB_ACTOR = "hub"
PENDING = "pending"
_ORDER = {PENDING: 0, ConfigStep.VALIDATED.value: 1, ConfigStep.APPLIED.value: 2}


class ConfigRolloutCreate(BaseModel):
    """A new rollout of a stored layout version to its store's devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: str = Field(pattern=STORE_ID_PATTERN)
    version: int = Field(ge=1, le=2**31 - 1, description="the store's layout version")
    wave_timeout_s: float = Field(
        600.0, gt=0, le=7 * 86400.0, description="a wave not passed after this long fails (s)"
    )


# -- the pure part -------------------------------------------------------------------------------


def plan_waves(devices: Sequence[str]) -> list[list[str]]:
    """The canary (the first device) alone, then the rest; ``devices`` in enrollment order."""
    return [list(w) for w in (devices[:1], devices[1:]) if w]


def evaluate_wave(
    steps: Mapping[str, str], reasons: Mapping[str, str | None], started_at: float,
    timeout_s: float, now: float,
) -> Verdict:  # fmt: skip
    """A wave's gate over its devices' steps: FAIL as soon as one failed, PASS once all
    applied, FAIL once ``timeout_s`` passed since ``started_at`` without that, else WAIT."""
    for device in sorted(steps):
        if steps[device] == ConfigStep.FAILED:
            return Verdict(
                Outcome.FAIL, f"device {device} failed: {reasons.get(device) or 'no reason given'}"
            )
    behind = sorted(d for d, s in steps.items() if s != ConfigStep.APPLIED)
    if not behind:
        return Verdict(Outcome.PASS)
    if now - started_at >= timeout_s:
        return Verdict(
            Outcome.FAIL, f"wave timed out after {timeout_s:.0f} s; not applied: {behind}"
        )
    return Verdict(Outcome.WAIT)


# -- creating and advancing ----------------------------------------------------------------------


def _event(
    conn: Connection, rollout_id: int, actor: str, action: str, detail: str | None, now: float
) -> None:
    conn.execute(
        insert(CONFIG_ROLLOUT_EVENTS).values(
            rollout_id=rollout_id, at=now, actor=actor, action=action, detail=detail
        )
    )
    log.info(
        "config rollout %d: %s by %s%s", rollout_id, action, actor, f": {detail}" if detail else ""
    )


def create_config_rollout(
    conn: Connection, request: ConfigRolloutCreate, *, actor: str, now: float
) -> ConfigRolloutDetail:
    """Plan and start a config rollout: the canary device gets the version as desired layout.

    Raises:
        ConfigRolloutNotFound: no such layout version. ConfigRolloutConflict: the store has no
            enrolled device, or a config rollout runs in it already.
    """
    store_id, version = request.store_id, request.version
    s = STORE_CONFIGS.c
    found = conn.execute(select(s.version).where(s.store_id == store_id, s.version == version))
    if found.first() is None:
        raise ConfigRolloutNotFound(f"store {store_id!r} has no layout version {version}")
    c = DEVICE_CREDENTIALS.c
    devices = list(
        conn.execute(
            select(c.device_id)
            .where(c.store_id == store_id, c.revoked_at.is_(None))
            .order_by(c.enrolled_at, c.device_id)
        ).scalars()
    )
    if not devices:
        raise ConfigRolloutConflict(f"store {store_id!r} has no enrolled device to roll out to")
    waves = plan_waves(devices)
    t = DEVICE_TWINS.c
    before = dict(
        conn.execute(
            select(t.device_id, t.desired_config_version).where(t.device_id.in_(devices))
        ).all()
    )
    values = {
        "store_id": store_id, "version": version, "from_version": current_version(conn, store_id),
        "state": ConfigRolloutState.RUNNING.value, "running_store": store_id, "waves": waves,
        "current_wave": 0, "wave_timeout_s": request.wave_timeout_s, "created_by": actor,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    running = list_config_rollouts(conn, None, store_id, ConfigRolloutState.RUNNING).items
    if running:
        raise _busy(store_id, running[0].id)
    try:
        rollout_id = conn.execute(
            insert(CONFIG_ROLLOUTS).values(**values).returning(CONFIG_ROLLOUTS.c.id)
        ).scalar_one()
    except IntegrityError:  # running_store is unique: another request started one meanwhile
        raise _busy(store_id, None) from None
    conn.execute(
        insert(CONFIG_ROLLOUT_DEVICES),
        [
            {"rollout_id": rollout_id, "device_id": d, "wave": w, "from_version": before.get(d),
             "step": PENDING, "updated_at": now}
            for w, wave in enumerate(waves) for d in wave
        ],
    )  # fmt: skip
    _event(
        conn, rollout_id, actor, "created",
        f"store {store_id} layout version {version} (from {values['from_version']}); waves "
        f"{waves}; wave_timeout_s {request.wave_timeout_s}",
        now,
    )  # fmt: skip
    _start_wave(conn, rollout_id, 0, now)
    advance(conn, rollout_id, now)
    return get_config_rollout(conn, rollout_id)


def _busy(store_id: str, rollout_id: int | None) -> ConfigRolloutConflict:
    which = "a config rollout" if rollout_id is None else f"config rollout {rollout_id}"
    return ConfigRolloutConflict(
        f"{which} is running in store {store_id!r}; wait for it to finish or abort it"
    )


def _start_wave(conn: Connection, rollout_id: int, wave: int, now: float) -> None:
    row = rollout_row(conn, rollout_id)
    conn.execute(
        update(CONFIG_ROLLOUTS)
        .where(CONFIG_ROLLOUTS.c.id == rollout_id)
        .values(current_wave=wave, wave_started_at=now, updated_at=now)
    )
    for device in row["waves"][wave]:
        set_desired_config(conn, device, row["store_id"], row["version"], rollout_id, now)
    _event(conn, rollout_id, HUB_ACTOR, "wave_started", f"wave {wave}: {row['waves'][wave]}", now)


def _revert_and_finish(
    conn: Connection, row: RowMapping, state: ConfigRolloutState, reason: str, now: float
) -> list[str]:
    """Give every device of the waves started so far its previous desired layout; finish."""
    reached = [r for r in rollout_devices(conn, row["id"]) if r["wave"] <= row["current_wave"]]
    for r in reached:
        set_desired_config(conn, r["device_id"], row["store_id"], r["from_version"], row["id"], now)
    _finish(conn, row["id"], state, reason, now)
    return [r["device_id"] for r in reached]


def _finish(
    conn: Connection, rollout_id: int, state: ConfigRolloutState, reason: str | None, now: float
) -> None:
    conn.execute(
        update(CONFIG_ROLLOUTS)
        .where(CONFIG_ROLLOUTS.c.id == rollout_id)
        .values(
            state=state.value, running_store=None, reason=reason, updated_at=now, finished_at=now
        )
    )


def advance(conn: Connection, rollout_id: int, now: float) -> ConfigRolloutState:
    """Run the gate of a running rollout's current wave and act on it: start the next wave,
    complete, or roll back every device reached and halt. Returns the state afterwards."""
    while True:
        row = rollout_row(conn, rollout_id, lock=True)
        state = ConfigRolloutState(row["state"])
        if state is not ConfigRolloutState.RUNNING:
            return state
        wave = row["current_wave"]
        members = [r for r in rollout_devices(conn, rollout_id) if r["wave"] == wave]
        verdict = evaluate_wave(
            {r["device_id"]: r["step"] for r in members},
            {r["device_id"]: r["reason"] for r in members},
            row["wave_started_at"] or now, row["wave_timeout_s"], now,
        )  # fmt: skip
        if verdict.outcome is Outcome.WAIT:
            return state
        if verdict.outcome is Outcome.FAIL:
            reason = verdict.reason or f"wave {wave} failed"
            reverted = _revert_and_finish(conn, row, ConfigRolloutState.ROLLED_BACK, reason, now)
            _event(
                conn, rollout_id, HUB_ACTOR, "rolled_back",
                f"wave {wave}: {reason}; devices {reverted} get their previous layout back",
                now,
            )  # fmt: skip
            return ConfigRolloutState.ROLLED_BACK
        _event(conn, rollout_id, HUB_ACTOR, "wave_passed", f"wave {wave}", now)
        if wave + 1 >= len(row["waves"]):
            _finish(conn, rollout_id, ConfigRolloutState.COMPLETED, None, now)
            _event(conn, rollout_id, HUB_ACTOR, "completed", f"version {row['version']}", now)
            return ConfigRolloutState.COMPLETED
        _start_wave(conn, rollout_id, wave + 1, now)


def advance_all(conn: Connection, now: float) -> dict[int, ConfigRolloutState]:
    """Run the gates of every running config rollout (the periodic job: wave timeouts)."""
    c = CONFIG_ROLLOUTS.c
    ids = list(
        conn.execute(select(c.id).where(c.state == ConfigRolloutState.RUNNING.value)).scalars()
    )
    return {i: advance(conn, i, now) for i in ids}


def abort_config_rollout(
    conn: Connection, rollout_id: int, *, actor: str, now: float, reason: str | None = None
) -> ConfigRolloutDetail:
    """Halt and give every device reached so far its previous desired layout back;
    ConfigRolloutConflict unless running."""
    row = rollout_row(conn, rollout_id, lock=True)
    if row["state"] != ConfigRolloutState.RUNNING:
        raise ConfigRolloutConflict(f"config rollout {rollout_id} is {row['state']} already")
    why = reason or "no reason given"
    reverted = _revert_and_finish(
        conn, row, ConfigRolloutState.ABORTED, reason or f"aborted by {actor}", now
    )
    _event(
        conn, rollout_id, actor, "aborted",
        f"{why}; devices {reverted} get their previous layout back", now,
    )  # fmt: skip
    return get_config_rollout(conn, rollout_id)


# -- devices -------------------------------------------------------------------------------------


def record_config_report(
    conn: Connection, device_id: str, store_id: str, report: ConfigReport, now: float
) -> None:
    """Keep a device's layout report: its twin, its step in the rollout (when the step is about
    the rollout's version and moves it forward), an audit entry when it differs from the
    device's last report; then run that rollout's gate. A report on a rollout of another store,
    or of a device the rollout does not hold, changes no rollout."""
    previous = last_config_report(conn, device_id)
    record_reported_config(conn, device_id, store_id, report, now)
    if report.rollout_id is None:
        return
    try:
        row = rollout_row(conn, report.rollout_id, lock=True)
    except ConfigRolloutNotFound:
        log.warning("device %s reported on unknown config rollout %s", device_id, report.rollout_id)
        return
    d = CONFIG_ROLLOUT_DEVICES.c
    mine = (d.rollout_id == report.rollout_id, d.device_id == device_id)
    member = conn.execute(select(d.step, d.wave).where(*mine)).first()
    if row["store_id"] != store_id or member is None:
        log.warning(
            "device %s (store %s) reported on config rollout %d, which is not its own",
            device_id, store_id, report.rollout_id,
        )  # fmt: skip
        return
    step = report.step.value
    reached = member.wave <= row["current_wave"]  # a later wave's device was not asked yet
    if (report.version, reached) == (row["version"], True) and (
        step == ConfigStep.FAILED or _ORDER.get(step, 0) > _ORDER.get(member.step, 3)
    ):
        values = {"step": step, "updated_at": now}
        if report.step is ConfigStep.FAILED:
            values["reason"] = report.reason
        conn.execute(update(CONFIG_ROLLOUT_DEVICES).where(*mine).values(**values))
    if previous != (report.rollout_id, step, report.running_version):
        detail = f"{step} version {report.version}; runs {report.running_version}"
        detail += f": {report.reason}" if report.reason else ""
        _event(conn, report.rollout_id, f"device:{device_id}", "device_report", detail, now)
    advance(conn, report.rollout_id, now)
