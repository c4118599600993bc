"""Rollouts in the database (SQLite and PostgreSQL): waves advance on the devices' reports,
a failed gate rolls its wave back and halts, people pause, resume and abort, and every change
is in the audit trail. The edges' side is tests/integration/test_rollout_e2e.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, insert

from cloud_hub.models import MODEL_BUNDLES
from cloud_hub.services.enrollment import EnrollRequest, create_enrollment_token, enroll_device
from cloud_hub.services.rollout_gates import Gates, PlanError, Targets, WavePlan
from cloud_hub.services.rollouts import (
    RolloutConflict,
    RolloutCreate,
    RolloutState,
    abort_rollout,
    advance_all,
    create_rollout,
    desired_state,
    get_rollout,
    pause_rollout,
    record_report,
    resume_rollout,
    set_desired,
)
from cloud_hub.services.stores import StoreUpdate, put_store
from common.manifest import DecoderFamily, InputSpec, ModelManifest
from common.twin import ReportedState, SmokeMetrics, TwinStep

T0 = 1_800_000_000.0
DEVICES = {"s1": ["s1-a"], "s2": ["s2-a", "s2-b"], "s3": ["s3-a"]}
GOOD = SmokeMetrics(
    frames=4,
    latency_ms_before=10,
    latency_ms_after=11,
    detections_per_frame_before=2,
    detections_per_frame_after=2,
)


def _model(version: str) -> dict[str, Any]:
    m = ModelManifest(
        name="det",
        version=version,
        family=DecoderFamily.YOLOX,
        input=InputSpec(width=416, height=416),
        classes=["person"],
    )
    return {
        "name": "det",
        "version": version,
        "sha256": version * 64,
        "size": 10,
        "key_id": "k",
        "manifest": m.model_dump(mode="json"),
        "uploaded_by": "t",
        "uploaded_at": T0,
    }


@pytest.fixture()
def fleet(hub_db: Engine) -> Engine:
    with hub_db.begin() as conn:
        conn.execute(insert(MODEL_BUNDLES), [_model("1"), _model("2")])
        for store, devices in DEVICES.items():
            put_store(conn, store, StoreUpdate(name=store, timezone="UTC", group="eu"), T0)
            for d in devices:
                tok = create_enrollment_token(conn, store, created_by="t", now=T0)
                enroll_device(conn, EnrollRequest(token=tok.token, device_id=d), now=T0)
        set_desired(conn, "s1-a", "s1", "det", "1", None, T0)  # s1-a already runs det 1
    return hub_db


def _report(engine: Engine, device: str, rollout: int, step: TwinStep, **kw: Any) -> None:
    store = device.split("-", maxsplit=1)[0]
    report = ReportedState(
        rollout_id=rollout,
        model_name="det",
        model_version="2",
        step=step,
        running_name="det",
        running_version="2" if step is TwinStep.SWITCHED else "1",
        **kw,
    )
    with engine.begin() as conn:
        record_report(conn, device, store, report, T0 + 5)


def _desired(engine: Engine, device: str) -> tuple[str | None, str | None]:
    with engine.connect() as conn:
        m = desired_state(conn, device, device.split("-", maxsplit=1)[0]).model
    return (None, None) if m is None else (m.name, m.version)


def _create(engine: Engine, **kw: Any) -> int:
    request = RolloutCreate(
        model_name="det",
        model_version="2",
        targets=Targets(group="eu"),
        waves=WavePlan(canary_stores=["s1"]),
        **kw,
    )
    with engine.begin() as conn:
        return create_rollout(conn, request, actor="ml-lead", now=T0).id


def test_good_model_goes_canary_then_everyone(fleet: Engine) -> None:
    rid = _create(fleet)
    assert _desired(fleet, "s1-a") == ("det", "2")
    assert _desired(fleet, "s2-a") == (None, None)  # later wave: untouched yet
    for step in (TwinStep.DOWNLOADED, TwinStep.VERIFIED, TwinStep.LOADED):
        _report(fleet, "s1-a", rid, step)
    _report(fleet, "s1-a", rid, TwinStep.SWITCHED, metrics=GOOD)
    assert _desired(fleet, "s2-a") == ("det", "2") == _desired(fleet, "s3-a")
    for d in ("s2-a", "s2-b", "s3-a"):
        _report(fleet, d, rid, TwinStep.SWITCHED, metrics=GOOD)
    with fleet.connect() as conn:
        done = get_rollout(conn, rid)
    assert done.state is RolloutState.COMPLETED
    assert done.waves == [["s1"], ["s2", "s3"]]
    actions = [e.action for e in done.events]
    assert actions == [
        "created",
        "wave_started",
        "wave_passed",
        "wave_started",
        "wave_passed",
        "completed",
    ]
    assert done.events[0].actor == "ml-lead"
    assert {d.device_id: d.from_version for d in done.devices}["s1-a"] == "1"


def test_a_failed_canary_rolls_back_and_halts(fleet: Engine) -> None:
    rid = _create(fleet)
    slow = GOOD.model_copy(update={"latency_ms_after": 50.0})
    _report(fleet, "s1-a", rid, TwinStep.SMOKE_PASSED, metrics=slow)
    with fleet.connect() as conn:
        done = get_rollout(conn, rid)
    assert done.state is RolloutState.ROLLED_BACK
    assert "max_latency_ratio" in (done.reason or "")
    assert _desired(fleet, "s1-a") == ("det", "1")  # its previous model back
    assert _desired(fleet, "s2-a") == (None, None)  # the next wave never started
    assert done.events[-1].action == "rolled_back" and done.events[-1].actor == "hub"
    # Devices are free for the next rollout.
    _create(fleet)


def test_a_device_failure_is_audited_with_its_reason(fleet: Engine) -> None:
    rid = _create(fleet)
    _report(fleet, "s1-a", rid, TwinStep.FAILED, reason="unknown_key: not trusted")
    with fleet.connect() as conn:
        done = get_rollout(conn, rid)
    assert done.state is RolloutState.ROLLED_BACK
    assert any(e.actor == "device:s1-a" and "unknown_key" in (e.detail or "") for e in done.events)


def test_a_silent_wave_times_out_from_the_periodic_job(fleet: Engine) -> None:
    rid = _create(fleet, gates=Gates(wave_timeout_s=60))
    with fleet.begin() as conn:
        assert advance_all(conn, T0 + 59) == {rid: RolloutState.RUNNING}
        assert advance_all(conn, T0 + 61) == {rid: RolloutState.ROLLED_BACK}
        assert "timed out" in (get_rollout(conn, rid).reason or "")


def test_pause_resume_abort_and_conflicts(fleet: Engine) -> None:
    rid = _create(fleet, gates=Gates(wave_timeout_s=60))
    with fleet.begin() as conn:
        pause_rollout(conn, rid, actor="ops", now=T0 + 1)
        assert advance_all(conn, T0 + 100) == {}  # paused: no gate, no timeout
        with pytest.raises(RolloutConflict):
            pause_rollout(conn, rid, actor="ops", now=T0 + 2)
    with pytest.raises(RolloutConflict, match="another running or paused"):
        _create(fleet)
    _report(fleet, "s1-a", rid, TwinStep.SWITCHED, metrics=GOOD)  # recorded while paused
    with fleet.begin() as conn:
        resumed = resume_rollout(conn, rid, actor="ops", now=T0 + 200)
    assert resumed.current_wave == 1  # the canary had passed: the next wave started
    with fleet.begin() as conn:
        aborted = abort_rollout(conn, rid, actor="ops", now=T0 + 201, reason="Friday")
    assert aborted.state is RolloutState.ABORTED
    assert _desired(fleet, "s1-a") == ("det", "1") and _desired(fleet, "s2-b") == (None, None)
    assert [e.action for e in aborted.events][-4:] == [
        "resumed",
        "wave_passed",
        "wave_started",
        "aborted",
    ]
    assert all(e.actor == "ops" for e in aborted.events if e.action in ("paused", "resumed"))


def test_bad_requests_are_refused(fleet: Engine) -> None:
    with fleet.begin() as conn, pytest.raises(PlanError):
        create_rollout(
            conn,
            RolloutCreate(model_name="det", model_version="2", targets=Targets(store_ids=["zz"])),
            actor="x",
            now=T0,
        )


def test_the_gates_run_as_a_periodic_job(fleet: Engine) -> None:
    import httpx

    from cloud_hub.core.config import HubSettings
    from cloud_hub.workers.jobs import hub_jobs

    rid = _create(fleet, gates=Gates(wave_timeout_s=60))
    settings = HubSettings(rollout_gate_interval_s=7)
    with httpx.Client() as client:
        jobs = {j.name: j for j in hub_jobs(fleet, settings, client)}
    assert jobs["rollout_gates"].period_s == 7
    jobs["rollout_gates"].run(T0 + 61)  # what the scheduler calls once per period
    with fleet.connect() as conn:
        assert get_rollout(conn, rid).state is RolloutState.ROLLED_BACK
