"""The per-camera facade: a scripted scene whose counts, visits and buckets are worked out by
hand, checked through the events, the rollups (aligned buckets, natural keys) and the summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from common.telemetry import AnalyticsEvent, EventKind, Metric, Rollup, RollupKind
from edge_agent.analytics import CameraAnalytics, CameraAnalyticsConfig
from edge_agent.track.tracks import Tracks

W, H = 1280, 720
EPOCH = 1_700_000_030.0  # 50 s into a UNIX minute: media bucket edges at 10, 70, 130, ...

CONFIG = {
    "lines": [{"id": "door", "points": [[0.05, 0.7], [0.95, 0.7]], "inside": [0.5, 0.3]}],
    "zones": [
        {
            "id": "display",
            "polygon": [[0.3, 0.2], [0.7, 0.2], [0.7, 0.65], [0.3, 0.65]],
            "min_dwell_s": 2,
            "engaged_s": 10,
            "exit_grace_s": 1.0,
        },
        {"id": "shelf-a", "kind": "shelf", "polygon": [[0.8, 0.0], [1.0, 0.0], [1.0, 0.2]]},
    ],
    "rollup_interval_s": 60,
}

OUTSIDE, DISPLAY, STORE, STORE_FAR = (0.5, 0.9), (0.5, 0.5), (0.1, 0.5), (0.9, 0.5)


def where(track: int, t: float) -> tuple[float, float] | None:
    """The scripted scene: where each person's feet are at media time t (None: not in view).

    A: outside 0-5 s, at the display 5-30 s, elsewhere in the store 30-35 s, outside 35-40 s.
    B: outside 60-65 s, at the display 65-70 s, then in the store (never leaves).
    C: outside 70-75 s, passes the display 75-76 s, then in the far end of the store.
    """
    if track == 1:
        if t < 5:
            return OUTSIDE
        if t < 30:
            return DISPLAY
        if t < 35:
            return STORE
        return OUTSIDE if t < 40 else None
    if track == 2:
        if t < 60:
            return None
        if t < 65:
            return OUTSIDE
        return DISPLAY if t < 70 else STORE
    if t < 70:
        return None
    if t < 75:
        return OUTSIDE
    return DISPLAY if t <= 76 else STORE_FAR


FRAME_TIMES = [k / 2 for k in range(0, 260)] + [300 + k / 2 for k in range(0, 41)]  # gap 130-300


def run_scene() -> tuple[CameraAnalytics, list[AnalyticsEvent], list[Rollup]]:
    cam = CameraAnalytics(
        CameraAnalyticsConfig.model_validate(CONFIG),
        store_id="store-1",
        camera_id="cam-1",
        epoch_start_s=EPOCH,
    )
    hits: dict[int, int] = {}
    events: list[AnalyticsEvent] = []
    rollups: list[Rollup] = []
    for t in FRAME_TIMES:
        present = [(i, p) for i in (1, 2, 3) if (p := where(i, t)) is not None]
        for i, _ in present:
            hits[i] = hits.get(i, 0) + 1
        feet = np.array([p for _, p in present], np.float64).reshape(-1, 2) * [W, H]
        tr = Tracks(
            np.column_stack([feet - np.array([15, 120]), feet + np.array([15, 0])]).astype(
                np.float32
            ),
            np.ones(len(present), np.float32),
            np.zeros(len(present), np.int32),
            np.array([i for i, _ in present], np.int64),
            np.array([hits[i] for i, _ in present], np.int32),
        )
        out = cam.update(tr, t, W, H)
        events += out.events
        rollups += out.rollups
    out = cam.flush(FRAME_TIMES[-1])
    return cam, events + out.events, rollups + out.rollups


def bucket(t: float) -> int:
    return math.floor((EPOCH + t) / 60) * 60


def series(rollups: list[Rollup], target: str, metric: str) -> dict[int, Rollup]:
    return {r.bucket_start: r for r in rollups if r.target_id == target and r.metric == metric}


def test_events_by_hand() -> None:
    _, events, _ = run_scene()
    crossings = [
        (e.track_id, e.payload.direction, e.occurred_at - EPOCH)
        for e in events
        if e.kind == EventKind.LINE_CROSSING
    ]
    assert crossings == [(1, "in", 5.0), (1, "out", 35.0), (2, "in", 65.0), (3, "in", 75.0)]
    visits = [e for e in events if e.kind == EventKind.VISIT]
    # A: first seen at the display at 5.0 (frame before: 4.5), last at 29.5: 25 s, engaged.
    # B: 64.5 to 69.5: 5 s. C: 1.5 s at the display is a pass-by, not a visit event.
    assert [(e.track_id, e.occurred_at - EPOCH) for e in visits] == [(1, 29.5), (2, 69.5)]
    dwell = [(e.payload.dwell_s, e.payload.engaged) for e in visits]
    assert dwell == [(25.0, True), (5.0, False)]
    for e in events:  # every event survives the wire
        assert AnalyticsEvent.model_validate_json(e.model_dump_json()) == e


def test_rollups_by_hand_in_aligned_buckets() -> None:
    _, _, rollups = run_scene()
    frame_buckets = sorted({bucket(t) for t in FRAME_TIMES})
    assert len(frame_buckets) == 5  # three before the gap, two after; none inside it
    assert sorted({r.bucket_start for r in rollups}) == frame_buckets
    assert all(r.bucket_start % 60 == 0 and r.interval_s == 60 for r in rollups)
    keys = [r.natural_key for r in rollups]
    assert len(keys) == len(set(keys))
    assert {r.target_id for r in rollups} == {"door", "display", "cam-1"}  # shelf ignored

    def counts(target: str, metric: str) -> list[int]:
        s = series(rollups, target, metric)
        return [s[b].count for b in frame_buckets]

    # Buckets in media time: [-50, 10), [10, 70), [70, 130), [250, 310), [310, 370).
    assert counts("door", Metric.LINE_IN) == [1, 1, 1, 0, 0]
    assert counts("door", Metric.LINE_OUT) == [0, 1, 0, 0, 0]
    # B's visit ends at 69.5 s but is only known at 71 s: it still lands in [10, 70).
    assert counts("display", Metric.VISITS) == [0, 2, 0, 0, 0]
    assert counts("display", Metric.ENGAGED) == [0, 1, 0, 0, 0]
    assert counts("display", Metric.PASS_BYS) == [0, 0, 1, 0, 0]
    dwell = series(rollups, "display", Metric.DWELL_S)
    assert list(dwell) == [bucket(29.5)]
    d = dwell[bucket(29.5)]
    assert (d.kind, d.count, d.sum, d.min, d.max) == (RollupKind.SAMPLES, 2, 30.0, 5.0, 25.0)
    assert d.histogram_edges is not None and d.histogram is not None
    assert d.histogram == [0, 0, 1, 1, 0, 0, 0, 0, 0]  # 5 s in [5, 10), 25 s in [10, 30)
    occ = series(rollups, "display", Metric.OCCUPANCY)
    assert [occ[b].max for b in frame_buckets] == [1, 1, 1, 0, 0]
    people = series(rollups, "cam-1", Metric.PEOPLE)
    # Frames per bucket: 20 in the first (0-9.5 s), 120, 120, 20 (300-309.5), 21 (310-320).
    assert [people[b].count for b in frame_buckets] == [20, 120, 120, 20, 21]
    assert [people[b].max for b in frame_buckets] == [1, 1, 2, 2, 2]  # A and B never meet


def test_summary_report_shape() -> None:
    cam, _, _ = run_scene()
    report = cam.summary().model_dump(by_alias=True)
    assert report == {
        "lines": {"door": {"in": 3, "out": 1}},
        "zones": {
            "display": {
                "visits": 2,
                "dwell_s": [25.0, 5.0],
                "max_occupancy": 1,
                "pass_bys": 1,
                "engaged": 1,
            }
        },
        "queues": {},
        "alerts": [],
    }
    json.dumps(report)  # the report is plain JSON


def test_rollup_counters_add_up_to_the_summary() -> None:
    cam, _, rollups = run_scene()
    s = cam.summary()
    assert sum(r.count for r in rollups if r.metric == Metric.LINE_IN) == s.lines["door"].in_
    assert sum(r.count for r in rollups if r.metric == Metric.VISITS) == s.zones["display"].visits


def test_bad_frames_are_refused() -> None:
    cam = CameraAnalytics(CameraAnalyticsConfig(), store_id="s", camera_id="c")
    cam.update(Tracks.empty(), 5.0, W, H)
    with pytest.raises(ValueError, match="before the previous frame"):
        cam.update(Tracks.empty(), 4.0, W, H)
    with pytest.raises(ValueError, match="frame size"):
        cam.update(Tracks.empty(), 6.0, 0, H)
