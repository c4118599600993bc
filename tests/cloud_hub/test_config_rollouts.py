"""Store layout versions and config rollouts in the database (SQLite and PostgreSQL): the canary
device first, then the rest; ``applied`` from every device completes, one ``failed`` report or
a wave timeout gives every device reached its previous layout back, people abort, one rollout
runs per store, and every change is in the audit trail. Over HTTP with a real hub process:
tests/cloud_hub/test_store_configs.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from cloud_hub.models import CONFIG_ROLLOUT_EVENTS, CONFIG_ROLLOUTS, STORE_CONFIGS
from cloud_hub.services.config_rollout_reads import (
    ConfigRolloutConflict,
    ConfigRolloutNotFound,
    ConfigRolloutState,
    current_version,
    get_config_rollout,
    list_config_rollouts,
)
from cloud_hub.services.config_rollouts import (
    ConfigRolloutCreate,
    abort_config_rollout,
    advance_all,
    create_config_rollout,
    evaluate_wave,
    plan_waves,
    record_config_report,
)
from cloud_hub.services.enrollment import EnrollRequest, create_enrollment_token, enroll_device
from cloud_hub.services.rollout_gates import Outcome
from cloud_hub.services.rollouts import desired_state, set_desired
from cloud_hub.services.store_configs import (
    LayoutRejected,
    StoreConfigCreate,
    StoreNotFound,
    create_config,
    list_configs,
)
from cloud_hub.services.stores import ensure_store
from common.store_config.layout import StoreLayout
from common.twin import ConfigReport, ConfigStep
from tests.cloud_hub.store_layouts import layout_json

T0 = 1_800_000_000.0
# Enrolled in this order: s1-c first, so it is s1's canary although its id sorts last.
DEVICES = {"s1": ["s1-c", "s1-a", "s1-b"], "s2": ["s2-a"]}


@pytest.fixture()
def fleet(hub_db: Engine) -> Engine:
    """Two stores with enrolled devices; s1 has layout versions 1 and 2, s2 version 1."""
    with hub_db.begin() as conn:
        for store, devices in DEVICES.items():
            for i, d in enumerate(devices):
                tok = create_enrollment_token(conn, store, created_by="t", now=T0)
                enroll_device(conn, EnrollRequest(token=tok.token, device_id=d), now=T0 + i)
        for store, alerts in (("s1", [4.0, 6.0]), ("s2", [5.0])):
            for a in alerts:
                request = StoreConfigCreate(layout=StoreLayout.model_validate(layout_json(a)))
                create_config(conn, store, request, actor="hq", now=T0)
    return hub_db


def _create(engine: Engine, version: int = 1, store: str = "s1", **kw: Any) -> int:
    request = ConfigRolloutCreate(store_id=store, version=version, **kw)
    with engine.begin() as conn:
        return create_config_rollout(conn, request, actor="ops-lead", now=T0 + 10).id


def _report(
    engine: Engine, device: str, rollout: int, step: ConfigStep, version: int = 1, **kw: Any
) -> None:
    running = kw.pop("running", version if step is ConfigStep.APPLIED else None)
    report = ConfigReport(
        rollout_id=rollout, version=version, step=step, running_version=running, **kw
    )
    with engine.begin() as conn:
        record_config_report(conn, device, device.split("-", maxsplit=1)[0], report, T0 + 20)


def get_config_rollout_at(engine: Engine, rollout_id: int) -> Any:
    with engine.connect() as conn:
        return get_config_rollout(conn, rollout_id)


def _desired(engine: Engine, device: str) -> tuple[int | None, int]:
    """(desired layout version or None, twin revision)."""
    with engine.connect() as conn:
        state = desired_state(conn, device, device.split("-", maxsplit=1)[0])
    return (None if state.config is None else state.config.version), state.revision


def test_waves_are_the_canary_then_the_rest() -> None:
    assert plan_waves(["c", "a", "b"]) == [["c"], ["a", "b"]]
    assert plan_waves(["only"]) == [["only"]]
    assert plan_waves([]) == []


def test_the_gate() -> None:
    def gate(steps: dict[str, str], now: float = 5.0) -> Outcome:
        return evaluate_wave(steps, {"b": "bad zone"}, 0.0, 10.0, now).outcome

    assert gate({"a": "applied", "b": "applied"}) is Outcome.PASS
    assert gate({"a": "applied", "b": "validated"}) is Outcome.WAIT
    assert gate({"a": "pending", "b": "failed"}) is Outcome.FAIL
    assert gate({"a": "applied", "b": "validated"}, now=10.0) is Outcome.FAIL
    failed = evaluate_wave({"a": "applied", "b": "failed"}, {"b": "bad zone"}, 0.0, 10.0, 1.0)
    assert failed.reason == "device b failed: bad zone"


def test_canary_then_everyone_then_completed(fleet: Engine) -> None:
    rid = _create(fleet)
    assert _desired(fleet, "s1-c") == (1, 1)  # the canary: first enrolled
    assert _desired(fleet, "s1-a") == (None, 0)  # later wave: untouched yet
    with fleet.connect() as conn:
        desired = desired_state(conn, "s1-c", "s1")
        stored = conn.execute(select(STORE_CONFIGS.c.layout).where(STORE_CONFIGS.c.version == 1))
        assert desired.config is not None and desired.config_rollout_id == rid
        assert desired.config.sha256 == StoreLayout.model_validate(stored.scalar()).sha256()
    _report(fleet, "s1-c", rid, ConfigStep.VALIDATED, running=None)
    assert _desired(fleet, "s1-a") == (None, 0)  # validated is not applied
    _report(fleet, "s1-c", rid, ConfigStep.APPLIED)
    assert _desired(fleet, "s1-a") == (1, 1) == _desired(fleet, "s1-b")
    _report(fleet, "s1-a", rid, ConfigStep.APPLIED)
    _report(fleet, "s1-b", rid, ConfigStep.APPLIED)
    with fleet.connect() as conn:
        done = get_config_rollout(conn, rid)
        assert current_version(conn, "s1") == 1 and current_version(conn, "s2") is None
    assert done.state is ConfigRolloutState.COMPLETED and done.finished_at == T0 + 20
    assert done.waves == [["s1-c"], ["s1-a", "s1-b"]] and done.from_version is None
    assert {d.device_id: (d.step, d.running_version) for d in done.devices} == {
        "s1-c": ("applied", 1),
        "s1-a": ("applied", 1),
        "s1-b": ("applied", 1),
    }
    assert [(e.actor, e.action) for e in done.events] == [
        ("ops-lead", "created"),
        ("hub", "wave_started"),
        ("device:s1-c", "device_report"),
        ("device:s1-c", "device_report"),
        ("hub", "wave_passed"),
        ("hub", "wave_started"),
        ("device:s1-a", "device_report"),
        ("device:s1-b", "device_report"),
        ("hub", "wave_passed"),
        ("hub", "completed"),
    ]
    # The next rollout starts from the completed version.
    nxt = _create(fleet, version=2)
    with fleet.connect() as conn:
        assert get_config_rollout(conn, nxt).from_version == 1


def test_a_failed_report_gives_every_reached_device_its_previous_layout(fleet: Engine) -> None:
    first = _create(fleet)
    for d in ("s1-c", "s1-a", "s1-b"):
        _report(fleet, d, first, ConfigStep.APPLIED)
    rid = _create(fleet, version=2)
    _report(fleet, "s1-c", rid, ConfigStep.APPLIED, version=2)  # the canary passes
    assert _desired(fleet, "s1-a") == (2, 2)
    _report(fleet, "s1-a", rid, ConfigStep.APPLIED, version=2)
    revisions = {d: _desired(fleet, d)[1] for d in ("s1-c", "s1-a", "s1-b")}
    _report(
        fleet, "s1-b", rid, ConfigStep.FAILED, version=2, running=1,
        reason="camera entrance: zone till outside the frame",
    )  # fmt: skip
    with fleet.connect() as conn:
        done = get_config_rollout(conn, rid)
    assert done.state is ConfigRolloutState.ROLLED_BACK
    assert done.reason == "device s1-b failed: camera entrance: zone till outside the frame"
    for d in ("s1-c", "s1-a", "s1-b"):  # every device reached, the canary too
        version, revision = _desired(fleet, d)
        assert version == 1 and revision == revisions[d] + 1, d
    assert done.events[-1].action == "rolled_back" and done.events[-1].actor == "hub"
    assert any(
        e.actor == "device:s1-b" and "outside the frame" in (e.detail or "") for e in done.events
    )
    with fleet.connect() as conn:
        assert current_version(conn, "s1") == 1  # the rolled-back version never became current
    # The store is free for the next rollout; a late report changes nothing of this one.
    _report(fleet, "s1-b", rid, ConfigStep.APPLIED, version=1)
    with fleet.connect() as conn:
        assert get_config_rollout(conn, rid).state is ConfigRolloutState.ROLLED_BACK
    _create(fleet, version=2)


def test_a_silent_wave_times_out_from_the_periodic_job(fleet: Engine) -> None:
    import httpx

    from cloud_hub.core.config import HubSettings
    from cloud_hub.workers.jobs import hub_jobs

    rid = _create(fleet, wave_timeout_s=60)
    other = _create(fleet, store="s2", wave_timeout_s=600)
    with fleet.begin() as conn:
        assert advance_all(conn, T0 + 69) == {
            rid: ConfigRolloutState.RUNNING,
            other: ConfigRolloutState.RUNNING,
        }
    with httpx.Client() as client:
        jobs = {j.name: j for j in hub_jobs(fleet, HubSettings(rollout_gate_interval_s=7), client)}
    assert jobs["config_rollout_gates"].period_s == 7
    jobs["config_rollout_gates"].run(T0 + 71)  # what the scheduler calls once per period
    with fleet.connect() as conn:
        done = get_config_rollout(conn, rid)
        assert get_config_rollout(conn, other).state is ConfigRolloutState.RUNNING
    assert done.state is ConfigRolloutState.ROLLED_BACK
    assert done.reason == "wave timed out after 60 s; not applied: ['s1-c']"
    assert _desired(fleet, "s1-c") == (None, 2)  # back to its file's layout, a new revision
    assert _desired(fleet, "s1-a") == (None, 0)  # never reached


def test_abort_reverts_and_only_once(fleet: Engine) -> None:
    rid = _create(fleet)
    _report(fleet, "s1-c", rid, ConfigStep.APPLIED)
    with fleet.begin() as conn:
        aborted = abort_config_rollout(conn, rid, actor="ops", now=T0 + 30, reason="Friday")
    assert aborted.state is ConfigRolloutState.ABORTED and aborted.reason == "Friday"
    assert all(_desired(fleet, d)[0] is None for d in ("s1-c", "s1-a", "s1-b"))
    assert aborted.events[-1].actor == "ops" and "Friday" in (aborted.events[-1].detail or "")
    with fleet.begin() as conn, pytest.raises(ConfigRolloutConflict, match="aborted already"):
        abort_config_rollout(conn, rid, actor="ops", now=T0 + 31)


def test_one_running_rollout_per_store(fleet: Engine) -> None:
    rid = _create(fleet)
    with pytest.raises(ConfigRolloutConflict, match=f"config rollout {rid} is running"):
        _create(fleet, version=2)
    _create(fleet, store="s2")  # another store is not held up
    with fleet.begin() as conn:
        abort_config_rollout(conn, rid, actor="ops", now=T0 + 30)
    _create(fleet, version=2)
    with fleet.connect() as conn:
        running = list_config_rollouts(conn, None, state=ConfigRolloutState.RUNNING).items
        assert sorted(r.store_id for r in running) == ["s1", "s2"]
        assert [r.store_id for r in list_config_rollouts(conn, frozenset({"s2"})).items] == ["s2"]


def test_bad_requests_are_refused(fleet: Engine) -> None:
    with pytest.raises(ConfigRolloutNotFound, match="no layout version 3"):
        _create(fleet, version=3)
    with fleet.begin() as conn:
        ensure_store(conn, "s3", T0)  # a store without a device
        create_config(
            conn, "s3", StoreConfigCreate(layout=StoreLayout.model_validate(layout_json())),
            actor="hq", now=T0,
        )  # fmt: skip
    with pytest.raises(ConfigRolloutConflict, match="no enrolled device"):
        _create(fleet, store="s3")


def test_reports_about_other_stores_or_versions_move_nothing(fleet: Engine) -> None:
    rid = _create(fleet)
    _report(fleet, "s2-a", rid, ConfigStep.APPLIED)  # a device of another store
    _report(fleet, "s1-a", rid, ConfigStep.APPLIED)  # its wave has not started: no effect
    _report(fleet, "s1-c", rid, ConfigStep.APPLIED, version=2)  # about another version
    with fleet.connect() as conn:
        got = get_config_rollout(conn, rid)
    assert got.state is ConfigRolloutState.RUNNING and got.current_wave == 0
    assert {d.device_id: d.step for d in got.devices} == {
        "s1-c": "pending",
        "s1-a": "pending",
        "s1-b": "pending",
    }
    assert not any(e.actor == "device:s2-a" for e in got.events)
    # A repeated report is one audit entry, and a step never goes back.
    _report(fleet, "s1-c", rid, ConfigStep.VALIDATED, running=None)
    _report(fleet, "s1-c", rid, ConfigStep.VALIDATED, running=None)
    with fleet.connect() as conn:
        e = CONFIG_ROLLOUT_EVENTS.c
        count = select(func.count()).where(e.rollout_id == rid, e.actor == "device:s1-c")
        assert conn.execute(count).scalar_one() == 2  # the version-2 report and one validated
    assert {d.device_id: d.step for d in get_config_rollout_at(fleet, rid).devices}["s1-c"] == (
        "validated"
    )
    _report(fleet, "s1-c", rid, ConfigStep.APPLIED)
    _report(fleet, "s1-c", rid, ConfigStep.VALIDATED, running=1)  # late, out of order
    assert {d.device_id: d.step for d in get_config_rollout_at(fleet, rid).devices} == {
        "s1-c": "applied",
        "s1-a": "pending",
        "s1-b": "pending",
    }


def test_model_and_layout_share_the_twin_revision(fleet: Engine) -> None:
    with fleet.begin() as conn:
        set_desired(conn, "s2-a", "s2", None, None, None, T0)
    assert _desired(fleet, "s2-a") == (None, 1)
    rid = _create(fleet, store="s2")
    with fleet.connect() as conn:
        state = desired_state(conn, "s2-a", "s2")
    assert state.revision == 2 and state.config_rollout_id == rid and state.rollout_id is None


def test_versions_are_numbered_per_store_and_checked(fleet: Engine) -> None:
    with fleet.connect() as conn:
        assert [c.version for c in list_configs(conn, "s1", 10, 0).items] == [2, 1]
        assert [c.version for c in list_configs(conn, "s2", 10, 0).items] == [1]
    bad_source = layout_json()
    bad_source["cameras"][0]["source"] = "rtsp://admin:hunter2@10.0.0.7/stream1"
    bad_target = layout_json()
    bad_target["cameras"][0]["alerts"][0]["target"] = "tills"
    cases = [
        (bad_source, ("layout", "cameras", 0, "source"), "password"),
        (bad_target, ("layout", "cameras", 0, "alerts", 0, "target"), "'tills'"),
    ]
    for body, loc, words in cases:
        request = StoreConfigCreate(layout=StoreLayout.model_validate(body))
        with fleet.begin() as conn, pytest.raises(LayoutRejected) as caught:
            create_config(conn, "s1", request, actor="hq", now=T0)
        assert caught.value.loc == loc and words in caught.value.message
        assert "hunter2" not in caught.value.message
    with fleet.begin() as conn, pytest.raises(StoreNotFound, match="PUT /api/v1/stores/zz"):
        create_config(
            conn, "zz", StoreConfigCreate(layout=StoreLayout.model_validate(layout_json())),
            actor="hq", now=T0,
        )  # fmt: skip
    with fleet.connect() as conn:
        assert conn.execute(select(func.count()).select_from(STORE_CONFIGS)).scalar_one() == 3


def test_the_database_holds_one_running_rollout_per_store(fleet: Engine) -> None:
    """Two requests that both passed the check for a running rollout: the unique
    ``running_store`` refuses the second (here: a row the check does not see as running)."""
    with fleet.begin() as conn:
        conn.execute(
            insert(CONFIG_ROLLOUTS).values(
                store_id="s1",
                version=1,
                state="completed",
                running_store="s1",
                waves=[],
                current_wave=0,
                wave_timeout_s=60,
                created_by="t",
                created_at=T0,
                updated_at=T0,
            )
        )
    with pytest.raises(ConfigRolloutConflict, match="a config rollout is running in store 's1'"):
        _create(fleet)
    assert _desired(fleet, "s1-c") == (None, 0)  # nothing of the refused rollout was kept
