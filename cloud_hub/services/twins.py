"""The layout part of the device twin: which store layout version a device should run, and what
it says it runs.

A device's desired layout is a version of its own store's layouts (``store_configs``), or none
(the box runs its file's layout). Every change bumps the twin's ``revision``, shared with the
desired model (``rollouts.set_desired``): the edge acts on revision changes. Times are UNIX
seconds (hub clock), passed in.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import DEVICE_TWINS, STORE_CONFIGS
from cloud_hub.services.sql import upsert
from common.store_config.layout import StoreLayout
from common.twin import ConfigReport, DesiredConfig


def set_desired_config(
    conn: Connection,
    device_id: str,
    store_id: str,
    version: int | None,
    rollout_id: int | None,
    now: float,
) -> None:
    """Set a device's desired layout version (None: its file's), bumping its revision."""
    c = DEVICE_TWINS.c
    values = {
        "desired_config_version": version,
        "desired_config_rollout_id": rollout_id,
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


def desired_config(conn: Connection, twin: RowMapping) -> DesiredConfig | None:
    """The layout a ``device_twins`` row asks for, with its hash; None: the box's file's."""
    version = twin["desired_config_version"]
    if version is None:
        return None
    s = STORE_CONFIGS.c
    row = (
        conn.execute(
            select(s.layout, s.sha256).where(s.store_id == twin["store_id"], s.version == version)
        )
        .mappings()
        .one()
    )
    return DesiredConfig(
        version=version, sha256=row["sha256"], layout=StoreLayout.model_validate(row["layout"])
    )


def last_config_report(
    conn: Connection, device_id: str
) -> tuple[int | None, str, int | None] | None:
    """The device's last layout report as (rollout id, step, version it runs after it); None
    when it never sent one."""
    c = DEVICE_TWINS.c
    row = conn.execute(
        select(
            c.reported_config_rollout_id, c.reported_config_step, c.reported_config_version
        ).where(c.device_id == device_id, c.reported_config_step.is_not(None))
    ).first()
    if row is None:
        return None
    return row.reported_config_rollout_id, row.reported_config_step, row.reported_config_version


def record_reported_config(
    conn: Connection, device_id: str, store_id: str, report: ConfigReport, now: float
) -> None:
    """Keep a device's layout report on its twin: the step, its rollout, and the version the
    agent runs after it."""
    c = DEVICE_TWINS.c
    reported = {
        "reported_config_version": report.running_version,
        "reported_config_step": report.step.value,
        "reported_config_rollout_id": report.rollout_id,
        "reported_config_at": now,
    }
    stmt = upsert(conn, DEVICE_TWINS).values(
        device_id=device_id, store_id=store_id, revision=0, desired_at=now, **reported
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=[c.device_id], set_=reported))
