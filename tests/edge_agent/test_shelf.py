"""Shelf monitoring core: config errors, outline geometry, the debounced slot state (with
hypothesis properties), the per-shelf monitor, and its wiring into the camera analytics (alerts,
rollups, ShelfStatus records, the outbox)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.sync import RecordKind, parse_record_body
from common.telemetry import AlertPayload, EventKind, Metric, ShelfStatus
from edge_agent.analytics import CameraAnalytics, CameraAnalyticsConfig
from edge_agent.config import config_json_schema, parse_config
from edge_agent.detect.detections import Detections
from edge_agent.errors import ConfigError
from edge_agent.outbox.records import Priority, classify
from edge_agent.outbox.store import Outbox
from edge_agent.shelf.classes import DetectorClasses, detector_class_names
from edge_agent.shelf.config import ShelfConfig
from edge_agent.shelf.debounce import UNKNOWN, Debouncer
from edge_agent.shelf.geometry import ShelfOutline, best_match, overlap_of_smaller
from edge_agent.shelf.monitor import EMPTY, STOCKED, ShelfFrame, ShelfMonitor
from edge_agent.track.tracks import Tracks

W, H = 1000, 500  # frame size of the synthetic frames, pixels
CLASSES = DetectorClasses(["person", "bicycle", "bottle"], ["person"])
PERSON, BOTTLE = 0, 2
SLOTS = [
    {"id": "a", "box": [0.1, 0.2, 0.3, 0.8], "product": "cola"},
    {"id": "b", "box": [0.4, 0.2, 0.6, 0.8], "product": "cola"},
    {"id": "c", "box": [0.7, 0.2, 0.9, 0.8]},
]
SHELF_ZONE: dict[str, Any] = {
    "id": "drinks",
    "kind": "shelf",
    "polygon": [[0.05, 0.1], [0.95, 0.1], [0.95, 0.9], [0.05, 0.9]],
    "shelf": {"slots": SLOTS, "hold_s": 2.0, "low_stock_below": 0.5},
}


def _frame(stocked: list[bool], person: bool = False, jitter: float = 0.0) -> ShelfFrame:
    """Bottle boxes standing in the stocked slots (pixels), and a person over the shelf."""
    boxes, classes = [], []
    for slot, full in zip(SLOTS, stocked, strict=True):
        if full:
            x1, y1, x2, y2 = slot["box"]
            boxes.append([(x1 + 0.03 + jitter) * W, (y1 + 0.05) * H, (x2 - 0.03) * W, y2 * H])
            classes.append(BOTTLE)
    if person:
        boxes.append([0.2 * W, 0.0, 0.5 * W, 0.7 * H])
        classes.append(PERSON)
    dets = Detections.from_arrays(np.asarray(boxes).reshape(-1, 4), [0.9] * len(boxes), classes)
    return ShelfFrame(dets)


def _monitor(**shelf: Any) -> ShelfMonitor:
    cfg = ShelfConfig.model_validate({**SHELF_ZONE["shelf"], **shelf})
    return ShelfMonitor(
        "drinks", SHELF_ZONE["polygon"], cfg, CLASSES.ids(["bottle"]), CLASSES.people_ids
    )


# -- config ---------------------------------------------------------------------------------


def _store(zone: dict[str, Any]) -> dict[str, Any]:
    return {
        "store_id": "s1",
        "device_id": "d1",
        "model": {"path": "m.onnx"},
        "cameras": [{"id": "cam", "source": "v.mp4", "zones": [zone]}],
    }


@pytest.mark.parametrize(
    ("zone", "where", "value"),
    [
        (
            {**SHELF_ZONE, "shelf": {"slots": [{"id": "a", "box": [0.5, 0.2, 0.3, 0.8]}]}},
            "cameras.0.zones.0.shelf.slots.0.box",
            "[0.5, 0.2, 0.3, 0.8]",
        ),
        (
            {**SHELF_ZONE, "shelf": {"slots": [{"id": "a", "box": [0.1, 0.2, 1.3, 0.8]}]}},
            "cameras.0.zones.0.shelf.slots.0.box.2",
            "1.3",
        ),
        (
            {**SHELF_ZONE, "shelf": {"slots": SLOTS, "low_stock_below": 1.5}},
            "cameras.0.zones.0.shelf.low_stock_below",
            "1.5",
        ),
        (
            {**SHELF_ZONE, "shelf": {"slots": SLOTS, "hold_s": -1}},
            "cameras.0.zones.0.shelf.hold_s",
            "-1",
        ),
        (
            {**SHELF_ZONE, "shelf": {"slots": [SLOTS[0], SLOTS[0]]}},
            "cameras.0.zones.0.shelf",
            "['a']",
        ),
        ({**SHELF_ZONE, "kind": "dwell"}, "cameras.0.zones.0", "kind 'dwell'"),
        (
            {**SHELF_ZONE, "shelf": {"slots": [{"id": "bad id", "box": [0.1, 0.2, 0.3, 0.8]}]}},
            "cameras.0.zones.0.shelf.slots.0.id",
            "bad id",
        ),
    ],
)
def test_config_errors_name_the_field_and_the_value(
    zone: dict[str, Any], where: str, value: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_store(zone), tmp_path)
    assert where in str(err.value)
    assert value in str(err.value)


def test_builtin_alert_ids_may_not_collide_with_configured_ones(tmp_path: Path) -> None:
    data = _store(SHELF_ZONE)
    rule = {"id": "drinks.low_stock", "metric": "people", "target": "cam", "op": ">"}
    data["cameras"][0]["alerts"] = [{**rule, "threshold": 3}]
    with pytest.raises(ConfigError, match=r"drinks\.low_stock"):
        parse_config(data, tmp_path)


def test_classifier_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    zone = {**SHELF_ZONE, "shelf": {**SHELF_ZONE["shelf"], "classifier": "bundles/products"}}
    cfg = parse_config(_store(zone), tmp_path)
    shelf = cfg.cameras[0].zones[0].shelf
    assert shelf is not None and shelf.classifier == (tmp_path / "bundles/products").resolve()


def test_config_schema_documents_shelves() -> None:
    schema = json.dumps(config_json_schema())
    for name in ("ShelfConfig", "SlotConfig", "OcclusionConfig", "low_stock_below", "hold_s"):
        assert name in schema


def test_detector_keeps_people_then_each_shelf_class_once() -> None:
    assert detector_class_names(["person"], ["bottle", "cup", "bottle"]) == (
        "person",
        "bottle",
        "cup",
    )
    with pytest.raises(ConfigError, match="banana"):
        CLASSES.ids(["banana"])
    dets = _frame([True, False, True], person=True).detections
    people = CLASSES.people_only(dets)
    assert people.class_id.tolist() == [PERSON]


# -- geometry -------------------------------------------------------------------------------

unit = st.floats(0.0, 1.0)


@st.composite
def rects(draw: st.DrawFn) -> tuple[float, float, float, float]:
    x = sorted(draw(st.lists(unit, min_size=2, max_size=2, unique=True)))
    y = sorted(draw(st.lists(unit, min_size=2, max_size=2, unique=True)))
    return x[0], y[0], x[1], y[1]


@given(shelf=rects(), box=rects())
@settings(max_examples=200, deadline=None)
def test_outline_coverage_matches_the_exact_rectangle_overlap(
    shelf: tuple[float, float, float, float], box: tuple[float, float, float, float]
) -> None:
    x1, y1, x2, y2 = shelf
    if (x2 - x1) < 0.05 or (y2 - y1) < 0.05:
        return  # below the outline's resolution: covered in its own test
    outline = ShelfOutline(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]))
    inter = max(0.0, min(x2, box[2]) - max(x1, box[0])) * max(
        0.0, min(y2, box[3]) - max(y1, box[1])
    )
    exact = inter / ((x2 - x1) * (y2 - y1))
    # Each edge of the shelf and the box may be off by half a cell of 1/256.
    cell_err = 4 * (1 / 256) / min(x2 - x1, y2 - y1)
    assert abs(outline.covered(np.array([box]))[0] - exact) <= cell_err


def test_a_slot_takes_the_product_that_overlaps_it_most() -> None:
    slots = np.array([[0.1, 0.2, 0.3, 0.8], [0.4, 0.2, 0.6, 0.8]])
    products = np.array([[0.42, 0.3, 0.58, 0.8], [0.12, 0.0, 0.28, 0.3]])  # b inside; a lifted
    assert best_match(slots, products, 0.5).tolist() == [-1, 0]
    assert overlap_of_smaller(slots, products)[1, 0] == pytest.approx(1.0)
    assert best_match(slots, np.zeros((0, 4)), 0.5).tolist() == [-1, -1]


# -- debounce properties --------------------------------------------------------------------

frames = st.lists(
    st.tuples(
        st.floats(0.01, 1.5),  # seconds since the previous frame
        st.lists(st.sampled_from([EMPTY, STOCKED]), min_size=3, max_size=3),
        st.lists(st.booleans(), min_size=3, max_size=3),  # observed
    ),
    min_size=1,
    max_size=60,
)


@given(frames=frames, hold=st.sampled_from([0.0, 0.5, 2.0, 5.0]))
@settings(max_examples=300, deadline=None)
def test_a_state_changes_only_after_every_observation_agreed_for_hold_s(
    frames: list[tuple[float, list[int], list[bool]]], hold: float
) -> None:
    d = Debouncer(3, hold)
    t = 0.0
    seen_log: list[tuple[float, int, int]] = []  # (t, slot, value) of observed values
    for dt, values, seen in frames:
        t += dt
        before = d.state.copy()
        changed = d.observe(np.array(values), t, np.array(seen))
        seen_log += [(t, i, values[i]) for i in range(3) if seen[i]]
        for i in range(3):
            if i not in changed:
                assert d.state[i] == before[i]  # no silent change
                continue
            assert seen[i] and d.state[i] == values[i]
            since = float(d.since[i])
            assert t - since >= hold - 1e-9  # held for hold_s ...
            run = [v for (ts, s, v) in seen_log if s == i and since <= ts <= t]
            assert run and all(v == values[i] for v in run)  # ... on every observation
            assert before[i] != values[i]


@given(frames=frames, hold=st.sampled_from([0.0, 1.0, 2.0]))
@settings(max_examples=200, deadline=None)
def test_a_value_observed_for_hold_s_becomes_the_state(
    frames: list[tuple[float, list[int], list[bool]]], hold: float
) -> None:
    d = Debouncer(3, hold)
    t = 0.0
    for dt, values, seen in frames:
        t += dt
        d.observe(np.array(values), t, np.array(seen))
    final = np.array([STOCKED, EMPTY, STOCKED])
    start = t + 0.1
    steps = np.arange(0, hold + 0.3, 0.1)
    for k in steps:
        d.observe(final, start + float(k))
    assert d.state.tolist() == final.tolist()


def test_unseen_slots_keep_state_and_candidate() -> None:
    d = Debouncer(1, 2.0)
    d.observe(np.array([EMPTY]), 0.0)
    d.observe(np.array([EMPTY]), 2.0)
    assert d.state.tolist() == [EMPTY]
    d.observe(np.array([STOCKED]), 3.0)  # candidate from 3.0
    assert d.observe(np.array([EMPTY]), 4.0, np.array([False])).size == 0  # hidden: ignored
    assert d.observe(np.array([STOCKED]), 5.0).tolist() == [0]
    assert d.since.tolist() == [3.0]
    d.reset(np.array([0]))
    assert d.state.tolist() == [UNKNOWN]


# -- monitor --------------------------------------------------------------------------------

scene = st.lists(
    st.tuples(
        st.lists(st.booleans(), min_size=3, max_size=3),  # slots stocked on this frame
        st.booleans(),  # a person stands in front of the shelf
        st.floats(-0.02, 0.02),  # box jitter
    ),
    min_size=1,
    max_size=80,
)


@given(scene=scene)
@settings(max_examples=150, deadline=None)
def test_occluded_frames_never_change_anything(scene: list[tuple[list[bool], bool, float]]) -> None:
    """A frame where a person hides the shelf changes no state; the run ends exactly as a run
    over the unoccluded frames alone (and counts the skipped ones)."""
    full, clear = _monitor(), _monitor()
    for k, (stocked, person, jitter) in enumerate(scene):
        t = 0.25 * k
        before = (full.occupancy.state.copy(), full.occupancy.since.copy())
        upd = full.update(_frame(stocked, person, jitter), W, H, t)
        assert upd.occluded == person
        if person:
            assert upd.changes == []
            assert np.array_equal(full.occupancy.state, before[0])
            assert np.array_equal(full.occupancy.since, before[1], equal_nan=True)
        else:
            clear.update(_frame(stocked, False, jitter), W, H, t)
    assert np.array_equal(full.occupancy.state, clear.occupancy.state)
    assert np.array_equal(full.occupancy.since, clear.occupancy.since, equal_nan=True)
    assert full.occluded_frames == sum(p for _, p, _ in scene)
    level = full.stock_level
    if level is not None:
        stocked_now = int(np.count_nonzero(full.occupancy.state == STOCKED))
        assert level == stocked_now / 3
        expected = "out_of_stock" if stocked_now == 0 else "low_stock" if level < 0.5 else "ok"
        assert full.status == expected
    else:
        assert full.status == "unknown"


def test_monitor_timeline_and_empty_since() -> None:
    m = _monitor()
    for k in range(25):  # 0-2.4 s all stocked
        m.update(_frame([True, True, True]), W, H, k / 10)
    assert m.status == "ok" and m.stock_level == 1.0
    changes = []
    for k in range(25, 55):  # slot b empty from 2.5 s; a person passes 3.0-3.4 s
        person = 30 <= k < 35
        changes += m.update(_frame([True, False, True], person), W, H, k / 10).changes
    assert [(c.slot_id, c.value) for c in changes] == [("b", "empty")]
    assert changes[0].since_s == pytest.approx(2.5)
    assert changes[0].t_s == pytest.approx(4.5)  # 2 s hold; occluded frames skip, not reset
    views = {v.slot_id: v for v in m.slots()}
    assert views["b"].state == "empty" and views["b"].empty_since_s == pytest.approx(2.5)
    assert views["a"].empty_since_s is None and views["a"].product == "cola"
    assert m.stock_level == pytest.approx(2 / 3) and m.status == "ok"
    assert m.occluded_frames == 5


# -- camera analytics wiring ----------------------------------------------------------------

EPOCH = 1_700_000_000.0  # 20 s into a UNIX minute: media buckets start at -20, 40, 100 s


def _camera() -> CameraAnalytics:
    cfg = CameraAnalyticsConfig.model_validate({"zones": [SHELF_ZONE], "rollup_interval_s": 60})
    return CameraAnalytics(
        cfg, store_id="s1", camera_id="cam", epoch_start_s=EPOCH, classes=CLASSES
    )


def test_camera_needs_the_detector_classes_for_shelves() -> None:
    cfg = CameraAnalyticsConfig.model_validate({"zones": [SHELF_ZONE]})
    with pytest.raises(ValueError, match="classes"):
        CameraAnalytics(cfg, store_id="s1", camera_id="cam")


def test_camera_raises_stock_alerts_rolls_up_and_reports_shelf_status(tmp_path: Path) -> None:
    cam = _camera()
    script = [  # (from s, stocked a, b, c, person)
        (0.0, [True, True, True], False),
        (10.0, [True, False, True], False),  # 2/3: ok (threshold 0.5)
        (20.0, [False, False, True], False),  # 1/3: low stock
        (30.0, [False, False, True], True),  # a person in front: skipped
        (35.0, [False, False, False], False),  # 0: out of stock
        (50.0, [True, True, True], False),  # restocked
    ]
    events, rollups, statuses = [], [], []
    for k in range(700):  # 0-69.9 s at 10 fps
        t = k / 10
        stocked, person = next((s, p) for (t0, s, p) in reversed(script) if t >= t0)
        out = cam.update(Tracks.empty(), t, W, H, _frame(stocked, person))
        events += out.events
        rollups += out.rollups
        statuses += out.shelves
    final = cam.flush(70.0)
    events += final.events
    rollups += final.rollups
    statuses += final.shelves

    alerts = [(e.kind, e.payload.rule_id, round(e.occurred_at - EPOCH, 1)) for e in events
              if isinstance(e.payload, AlertPayload)]  # fmt: skip
    assert alerts == [
        (EventKind.ALERT_RAISED, "drinks.low_stock", 22.0),
        (EventKind.ALERT_RAISED, "drinks.out_of_stock", 37.0),
        (EventKind.ALERT_CLEARED, "drinks.low_stock", 52.0),
        (EventKind.ALERT_CLEARED, "drinks.out_of_stock", 52.0),
    ]
    assert all(e.target_id == "drinks" for e in events)

    by_key = {(r.target_id, r.metric, r.bucket_start): r for r in rollups}
    b0 = 1_699_999_980  # the bucket holding media 0-40 s (EPOCH is 20 s into a minute)
    occ = by_key[("drinks", Metric.SHELF_OCCLUDED, b0)]
    assert occ.count == 400 and occ.sum == 50  # 40 s at 10 fps, 30-35 s hidden
    level = by_key[("drinks", Metric.STOCK_LEVEL, b0)]
    assert level.min == 0.0 and level.max == 1.0 and level.count == 400 - 20  # known from 2 s

    # A status on every change and on the first frame of each bucket; the last at flush.
    assert len({s.observed_at for s in statuses}) == len(statuses)
    last = statuses[-1]
    assert last.status == "ok" and [s.state for s in last.slots] == ["stocked"] * 3
    oos = next(s for s in statuses if s.status == "out_of_stock")
    empty_a = next(sl for sl in oos.slots if sl.slot_id == "a")
    assert empty_a.empty_since == pytest.approx(EPOCH + 20.0)
    assert statuses[0].status == "unknown" and statuses[0].slots[0].state == "unknown"
    summary = cam.summary().shelves["drinks"]
    assert summary.occluded_frames == 50 and summary.frames == 700
    assert [(c.slot, c.value, c.since_s) for c in summary.changes[3:5]] == [
        ("b", "empty", 10.0),
        ("a", "empty", 20.0),
    ]

    # Shelf statuses go to the outbox at the rollups' priority and come back intact.
    assert classify(last) == (RecordKind.SHELF_STATUS, Priority.SUMMARY)
    with Outbox.open(tmp_path / "o.db", "d1", "s1", reserve_bytes=0) as outbox:
        outbox.append(statuses, now=EPOCH)
        sent = outbox.pending(1000, 1 << 20)
    assert [r.kind for r in sent] == ["shelf_status"] * len(statuses)
    back = [parse_record_body(r) for r in sent]
    assert back == statuses and all(isinstance(b, ShelfStatus) for b in back)


def test_shelf_status_contract_rejects_inconsistent_records() -> None:
    base: dict[str, Any] = {
        "store_id": "s1",
        "camera_id": "cam",
        "shelf_id": "drinks",
        "observed_at": 10.0,
        "status": "ok",
        "stock_level": 1.0,
        "low_stock_below": 0.5,
        "slots": [{"slot_id": "a", "state": "stocked", "since": 1.0}],
    }
    ShelfStatus.model_validate(base)
    bad_slots = [
        ({"state": "empty", "since": 1.0}, "empty_since"),
        ({"state": "unknown", "since": 1.0}, "since is null"),
        ({"state": "stocked", "since": 1.0, "seen_product": "x", "misplaced": True}, "planned"),
    ]
    for slot, message in bad_slots:
        with pytest.raises(ValueError, match=message):
            ShelfStatus.model_validate({**base, "slots": [{"slot_id": "a", **slot}]})
    with pytest.raises(ValueError, match="unknown exactly when"):
        ShelfStatus.model_validate({**base, "stock_level": None})
    with pytest.raises(ValueError, match="repeat"):
        ShelfStatus.model_validate({**base, "slots": base["slots"] * 2})
