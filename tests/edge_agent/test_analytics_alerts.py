"""Alert rules: hold time, clear hysteresis, cooldown, operators, and metrics from the facade."""

from __future__ import annotations

import numpy as np
import pytest

from common.telemetry import AlertPayload, EventKind
from edge_agent.analytics import AlertEngine, AlertRule, CameraAnalytics, CameraAnalyticsConfig
from edge_agent.track.tracks import Tracks


def rule(**kw: object) -> AlertRule:
    base: dict[str, object] = {
        "id": "long-queue",
        "metric": "queue_length",
        "target": "checkout",
        "op": ">",
        "threshold": 3,
        "for_s": 30,
        "clear_threshold": 2,
        "cooldown_s": 300,
    }
    return AlertRule.model_validate(base | kw)


def replay(engine: AlertEngine, samples: list[tuple[float, float]]) -> list[tuple[str, float]]:
    out = []
    for t, v in samples:
        out += [(e.kind, e.t_s) for e in engine.observe("queue_length", "checkout", v, t)]
    return out


def test_raises_only_after_holding_for_s_and_a_dip_restarts_the_hold() -> None:
    engine = AlertEngine([rule(cooldown_s=0)])
    # 4 people from 0 s; a dip to 3 at 20 s restarts the clock; holds again from 25 s.
    samples = [(float(t), 4.0) for t in range(0, 20)] + [(20.0, 3.0)]
    samples += [(float(t), 4.0) for t in range(25, 60)]
    assert replay(engine, samples) == [("raised", 55.0)]


def test_clear_hysteresis_value_between_clear_and_threshold_keeps_it_raised() -> None:
    engine = AlertEngine([rule(for_s=0, cooldown_s=0)])
    # Raised at 4; 3 (not > 3, but > clear 2) keeps it raised; 2 clears; 3 does not re-raise.
    events = replay(engine, [(0, 4), (1, 3), (2, 3), (3, 2.5), (4, 2), (5, 3), (6, 3.5)])
    assert events == [("raised", 0), ("cleared", 4), ("raised", 6)]


def test_cooldown_blocks_re_raise_then_raises_on_first_sample_after_it() -> None:
    engine = AlertEngine([rule(for_s=10, cooldown_s=300)])
    samples = [(float(t), 5.0) for t in range(0, 20)]  # raise at 10 s
    samples += [(20.0, 1.0)]  # clear at 20 s
    samples += [(float(t), 5.0) for t in range(30, 400, 10)]  # busy again from 30 s
    events = replay(engine, samples)
    # Held for 10 s by 40 s, but the cooldown lasts until 320 s.
    assert events == [("raised", 10.0), ("cleared", 20.0), ("raised", 320.0)]
    assert engine.is_active("long-queue")


@pytest.mark.parametrize(
    ("op", "threshold", "clear", "values", "want"),
    [
        (">=", 3, 2, [2, 3, 2.5, 1.9], ["raised", "cleared"]),  # >= raises at equality
        (">", 3, 3, [3, 3.1, 3], ["raised", "cleared"]),  # > does not raise at 3
        ("<", 5, 8, [5, 4, 7, 8], ["raised", "cleared"]),  # low stock style rule
        ("<=", 5, 5, [6, 5, 5.5], ["raised", "cleared"]),
    ],
)
def test_operators(
    op: str, threshold: float, clear: float, values: list[float], want: list[str]
) -> None:
    engine = AlertEngine(
        [rule(op=op, threshold=threshold, clear_threshold=clear, for_s=0, cooldown_s=0)]
    )
    got = replay(engine, [(float(i), v) for i, v in enumerate(values)])
    assert [k for k, _ in got] == want
    assert got[-1][1] == len(values) - 1  # the last sample is the one that clears


def test_other_metrics_and_targets_are_ignored() -> None:
    engine = AlertEngine([rule(for_s=0)])
    assert engine.observe("queue_length", "other-zone", 99, 0.0) == []
    assert engine.observe("occupancy", "checkout", 99, 0.0) == []
    with pytest.raises(ValueError, match="not finite"):
        engine.observe("queue_length", "checkout", float("nan"), 1.0)


def test_camera_offline_is_just_a_metric() -> None:
    cfg = CameraAnalyticsConfig.model_validate(
        {
            "alerts": [
                {
                    "id": "cam-down",
                    "metric": "camera_offline",
                    "target": "cam1",
                    "op": ">=",
                    "threshold": 1,
                    "for_s": 60,
                    "clear_threshold": 0.5,
                }
            ]
        }
    )
    cam = CameraAnalytics(cfg, store_id="store1", camera_id="cam1", epoch_start_s=1_700_000_000)
    events = []
    for t in range(0, 200, 10):
        events += cam.observe_metric("camera_offline", "cam1", 1.0 if t < 120 else 0.0, float(t))
    assert [(e.kind, e.occurred_at) for e in events] == [
        (EventKind.ALERT_RAISED, 1_700_000_060.0),
        (EventKind.ALERT_CLEARED, 1_700_000_120.0),
    ]
    assert isinstance(events[0].payload, AlertPayload) and events[0].payload.value == 1.0
    dump = cam.summary().model_dump()
    assert dump["alerts"] == [{"rule": "cam-down", "raised_at_s": 60.0, "cleared_at_s": 120.0}]


def test_queue_length_alert_from_tracks() -> None:
    """The facade publishes queue_length per frame: 5 people standing in the checkout queue for
    40 s raise the rule after 30 s; when 3 of them vanish (2 remain, <= clear 2) it clears once
    they have been lost for longer than exit_grace_s."""
    cfg = CameraAnalyticsConfig.model_validate(
        {
            "zones": [
                {
                    "id": "checkout",
                    "kind": "queue",
                    "polygon": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]],
                    "exit_grace_s": 1.0,
                }
            ],
            "alerts": [rule().model_dump()],
        }
    )
    cam = CameraAnalytics(cfg, store_id="s", camera_id="c")
    events = []
    for k in range(0, 100):  # 2 fps
        t = k / 2
        n = 5 if t < 40 else 2
        feet_px = np.array([[100.0 + 50 * i, 300.0] for i in range(n)])
        tr = Tracks(
            np.column_stack([feet_px - np.array([10, 80]), feet_px + np.array([10, 0])]).astype(
                np.float32
            ),
            np.ones(n, np.float32),
            np.zeros(n, np.int32),
            np.arange(1, n + 1, dtype=np.int64),
            np.full(n, k + 1, np.int32),
        )
        events += [e for e in cam.update(tr, t, 1000, 600).events if e.kind != EventKind.VISIT]
    # Confirmed (3 hits) at t = 1.0 s; held 30 s at 31.0 s. The 3 leavers are last seen at
    # 39.5 s and still counted while lost for up to 1 s: the queue is 2 from 41.0 s.
    assert [(e.kind, e.occurred_at) for e in events] == [
        (EventKind.ALERT_RAISED, 31.0),
        (EventKind.ALERT_CLEARED, 41.0),
    ]


def test_a_closing_buckets_mean_does_not_restart_a_per_frame_gauges_hold() -> None:
    """Regression: a gauge the rules see on every frame (queue_length) was also fed the closing
    bucket's mean. Empty for 50 s, then 5 people queue: at the minute's close the mean (under
    1) looked like a dip and restarted the 30 s hold, so the alert came 9.5 s late."""
    cfg = CameraAnalyticsConfig.model_validate(
        {
            "zones": [
                {
                    "id": "checkout",
                    "kind": "queue",
                    "polygon": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]],
                }
            ],
            "alerts": [rule().model_dump()],
            "rollup_interval_s": 60,
        }
    )
    cam = CameraAnalytics(cfg, store_id="s", camera_id="c")
    raised = []
    for k in range(0, 240):  # 2 fps, 120 s
        t = k / 2
        n = 5 if t >= 50 else 0
        feet_px = np.array([[100.0 + 50 * i, 300.0] for i in range(n)]).reshape(-1, 2)
        hits = max(0, k - 100 + 1)  # the queue's tracks start at t = 50 s
        tr = Tracks(
            np.column_stack([feet_px - np.array([10, 80]), feet_px + np.array([10, 0])]).astype(
                np.float32
            ),
            np.ones(n, np.float32),
            np.zeros(n, np.int32),
            np.arange(1, n + 1, dtype=np.int64),
            np.full(n, hits, np.int32),
        )
        out = cam.update(tr, t, 1000, 600)
        raised += [e.occurred_at for e in out.events if e.kind == EventKind.ALERT_RAISED]
    # Confirmed (3 hits) at 51.0 s; held 30 s at 81.0 s, whatever the minute's mean at 60 s.
    assert raised == [81.0]
