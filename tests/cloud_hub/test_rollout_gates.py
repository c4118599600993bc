"""The pure rollout logic: target stores, wave plans and the wave gate."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud_hub.services.rollout_gates import (
    DeviceProgress,
    Gates,
    Outcome,
    PlanError,
    Targets,
    WavePlan,
    evaluate_wave,
    plan_waves,
    select_stores,
)

GATES = Gates(max_latency_ratio=2.0, min_detection_ratio=0.5, wave_timeout_s=600)
STORE_IDS = st.lists(st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True), unique=True)


def switched(device: str, lat: tuple[float, float] = (10, 12), det: tuple[float, float] = (2, 2)):  # type: ignore[no-untyped-def]
    return DeviceProgress(device, "switched", None, lat[0], lat[1], det[0], det[1])


@given(STORE_IDS.filter(bool), st.floats(0.1, 100))
def test_a_percentage_takes_ceil_of_the_stores_stably(stores: list[str], p: float) -> None:
    pairs = [(s, None) for s in stores]
    chosen = select_stores(pairs, Targets(percent=p), "m\0v1")
    assert len(chosen) == math.ceil(len(stores) * p / 100)
    assert set(chosen) <= set(stores)
    assert chosen == select_stores(list(reversed(pairs)), Targets(percent=p), "m\0v1")


@given(STORE_IDS.filter(bool), st.lists(st.floats(1, 99), max_size=4))
def test_percentage_waves_cover_every_store_once_in_order(
    stores: list[str], cuts: list[float]
) -> None:
    plan = WavePlan(percentages=[*sorted(set(cuts)), 100.0])
    waves = plan_waves(stores, plan)
    assert [s for w in waves for s in w] == stores
    assert all(waves)


def test_canary_first_then_the_rest() -> None:
    assert plan_waves(["a", "b", "c"], WavePlan(canary_stores=["b"])) == [["b"], ["a", "c"]]
    assert plan_waves(["a"], WavePlan(canary_stores=["a"])) == [["a"]]
    assert plan_waves(["a", "b"], WavePlan()) == [["a", "b"]]
    with pytest.raises(PlanError, match="not among the target"):
        plan_waves(["a"], WavePlan(canary_stores=["z"]))


def test_targets_and_plans_are_checked() -> None:
    stores = [("a", "north"), ("b", "south"), ("c", "north")]
    assert select_stores(stores, Targets(group="north"), "x") == ["a", "c"]
    assert select_stores(stores, Targets(store_ids=["c", "a", "c"]), "x") == ["c", "a"]
    with pytest.raises(PlanError, match="no enrolled device"):
        select_stores(stores, Targets(store_ids=["zz"]), "x")
    with pytest.raises(PlanError, match="group"):
        select_stores(stores, Targets(group="east"), "x")
    for bad in ({}, {"store_ids": ["a"], "percent": 5}):
        with pytest.raises(ValidationError):
            Targets(**bad)  # type: ignore[arg-type]
    for wrong in ([50, 20, 100], [10, 50], [0, 100]):
        with pytest.raises(ValidationError):
            WavePlan(percentages=wrong)


def test_a_wave_passes_when_every_device_switched_within_bounds() -> None:
    wave = [switched("d1"), switched("d2", (10, 19.9), (4, 2))]
    assert evaluate_wave(wave, GATES, 0, 1).outcome is Outcome.PASS
    assert evaluate_wave([], GATES, 0, 1).outcome is Outcome.PASS
    # No detections before: the detection gate has nothing to compare with.
    assert evaluate_wave([switched("d1", det=(0, 0))], GATES, 0, 1).outcome is Outcome.PASS


def test_a_wave_waits_then_times_out() -> None:
    wave = [switched("d1"), DeviceProgress("d2", "loaded")]
    assert evaluate_wave(wave, GATES, 0, 599).outcome is Outcome.WAIT
    late = evaluate_wave(wave, GATES, 0, 600)
    assert late.outcome is Outcome.FAIL and "timed out" in (late.reason or "")
    assert "d2" in (late.reason or "") and "d1" not in (late.reason or "")


@pytest.mark.parametrize(
    ("device", "expect"),
    [
        (DeviceProgress("d2", "failed", "smoke: boom"), "smoke: boom"),
        (switched("d2", lat=(10, 25)), "max_latency_ratio"),
        (switched("d2", det=(4, 1.9)), "min_detection_ratio"),
        # Bounds fail as soon as the smoke test reports them, before the switch.
        (DeviceProgress("d2", "smoke_passed", None, 10, 100, 2, 2), "x10.00"),
    ],
)
def test_a_wave_fails_at_once_on_a_failed_device_or_bound(
    device: DeviceProgress, expect: str
) -> None:
    verdict = evaluate_wave([switched("d1"), device], GATES, 0, 1)
    assert verdict.outcome is Outcome.FAIL
    assert expect in (verdict.reason or "") and "d2" in (verdict.reason or "")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pending", "downloaded", "smoke_passed", "switched", "failed"]),
            st.floats(1, 100),
            st.floats(1, 100),
            st.floats(0, 10),
            st.floats(0, 10),
        ),
        max_size=6,
    ),
    st.floats(0, 2000),
)
def test_gate_outcome_is_exactly_the_rule(
    rows: list[tuple[str, float, float, float, float]], now: float
) -> None:
    devices = [
        DeviceProgress(f"d{i}", s, None, lb, la, db, da)
        for i, (s, lb, la, db, da) in enumerate(rows)
    ]
    verdict = evaluate_wave(devices, GATES, 0, now)
    bad = any(
        d.step == "failed"
        or d.latency_ms_after > 2.0 * d.latency_ms_before  # type: ignore[operator]
        or (d.detections_before > 0 and d.detections_after < 0.5 * d.detections_before)  # type: ignore[operator]
        for d in devices
    )
    done = all(d.step == "switched" for d in devices)
    if bad or (not done and now >= 600):
        assert verdict.outcome is Outcome.FAIL
    elif done:
        assert verdict.outcome is Outcome.PASS
    else:
        assert verdict.outcome is Outcome.WAIT
