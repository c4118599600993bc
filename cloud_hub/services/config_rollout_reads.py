"""Config rollouts as people read them: the rollout, its devices' steps and its audit trail,
and the store's current layout version. The writing side is ``config_rollouts``. Times are UNIX
seconds UTC.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import (
    CONFIG_ROLLOUT_DEVICES,
    CONFIG_ROLLOUT_EVENTS,
    CONFIG_ROLLOUTS,
    DEVICE_TWINS,
)


class ConfigRolloutState(StrEnum):
    """Where a config rollout stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


class ConfigRolloutNotFound(LookupError):
    """No such config rollout, or no such layout version."""


class ConfigRolloutConflict(ValueError):
    """The change does not apply as things are (a rollout already runs in the store, the store
    has no enrolled device, the rollout has finished)."""


class ConfigRolloutOut(BaseModel):
    """A config rollout. Times: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid")

    id: int
    store_id: str
    version: int
    from_version: int | None = Field(description="the store's version before (null: files')")
    state: ConfigRolloutState
    waves: list[list[str]] = Field(description="device ids of each wave: the canary, the rest")
    current_wave: int = Field(description="index into waves of the wave under way or last run")
    wave_started_at: float | None
    wave_timeout_s: float
    reason: str | None = Field(description="why it rolled back or was aborted")
    created_by: str
    created_at: float
    updated_at: float
    finished_at: float | None


class ConfigRolloutDeviceOut(BaseModel):
    """One device of a config rollout and its last reported step for the rollout's version."""

    model_config = ConfigDict(extra="forbid")

    device_id: str
    wave: int
    step: str = Field(description="pending, validated, applied or failed")
    reason: str | None
    running_version: int | None = Field(description="the version it last said it runs")
    updated_at: float


class ConfigRolloutEventOut(BaseModel):
    """One entry of the audit trail."""

    model_config = ConfigDict(extra="forbid")

    at: float
    actor: str = Field(description="an API key's name, device:ID, or hub")
    action: str
    detail: str | None


class ConfigRolloutDetail(ConfigRolloutOut):
    """A config rollout with its devices and audit trail."""

    devices: list[ConfigRolloutDeviceOut]
    events: list[ConfigRolloutEventOut]


class ConfigRolloutList(BaseModel):
    """Config rollouts, newest first."""

    model_config = ConfigDict(extra="forbid")

    items: list[ConfigRolloutOut]


# -- reading -------------------------------------------------------------------------------------


def rollout_row(conn: Connection, rollout_id: int, lock: bool = False) -> RowMapping:
    q = select(CONFIG_ROLLOUTS).where(CONFIG_ROLLOUTS.c.id == rollout_id)
    row = conn.execute(q.with_for_update() if lock else q).mappings().first()
    if row is None:
        raise ConfigRolloutNotFound(f"config rollout {rollout_id} not found")
    return row


def rollout_out(row: RowMapping) -> ConfigRolloutOut:
    fields = ConfigRolloutOut.model_fields
    return ConfigRolloutOut(**{k: row[k] for k in fields})


def rollout_devices(conn: Connection, rollout_id: int) -> list[RowMapping]:
    d = CONFIG_ROLLOUT_DEVICES.c
    q = select(CONFIG_ROLLOUT_DEVICES).where(d.rollout_id == rollout_id)
    return list(conn.execute(q.order_by(d.wave, d.device_id)).mappings().all())


def get_config_rollout(conn: Connection, rollout_id: int) -> ConfigRolloutDetail:
    """A config rollout with its devices and audit trail; ConfigRolloutNotFound."""
    base = rollout_out(rollout_row(conn, rollout_id))
    devices = rollout_devices(conn, rollout_id)
    t = DEVICE_TWINS.c
    running = dict(
        conn.execute(
            select(t.device_id, t.reported_config_version).where(
                t.device_id.in_([d["device_id"] for d in devices])
            )
        ).all()
    )
    e = CONFIG_ROLLOUT_EVENTS.c
    events = conn.execute(
        select(CONFIG_ROLLOUT_EVENTS).where(e.rollout_id == rollout_id).order_by(e.id)
    ).mappings()
    return ConfigRolloutDetail(
        **base.model_dump(),
        devices=[
            ConfigRolloutDeviceOut(
                device_id=r["device_id"],
                wave=r["wave"],
                step=r["step"],
                reason=r["reason"],
                running_version=running.get(r["device_id"]),
                updated_at=r["updated_at"],
            )
            for r in devices
        ],
        events=[
            ConfigRolloutEventOut(
                at=r["at"], actor=r["actor"], action=r["action"], detail=r["detail"]
            )
            for r in events
        ],
    )


def list_config_rollouts(
    conn: Connection,
    store_ids: frozenset[str] | None,
    store_id: str | None = None,
    state: ConfigRolloutState | None = None,
) -> ConfigRolloutList:
    """Config rollouts of the stores ``store_ids`` (None: all), newest first; optionally of one
    store and in one state."""
    c = CONFIG_ROLLOUTS.c
    q = select(CONFIG_ROLLOUTS).order_by(c.id.desc())
    if store_ids is not None:
        q = q.where(c.store_id.in_(sorted(store_ids)))
    if store_id is not None:
        q = q.where(c.store_id == store_id)
    if state is not None:
        q = q.where(c.state == state.value)
    return ConfigRolloutList(items=[rollout_out(r) for r in conn.execute(q).mappings().all()])


def current_version(conn: Connection, store_id: str) -> int | None:
    """The store's current layout version: that of its last completed rollout (None: none)."""
    c = CONFIG_ROLLOUTS.c
    return conn.execute(
        select(c.version)
        .where(c.store_id == store_id, c.state == ConfigRolloutState.COMPLETED.value)
        .order_by(c.finished_at.desc(), c.id.desc())
        .limit(1)
    ).scalar()
