"""ByteTracker behaviour on hand-built scenes, and properties of the pure association parts.

Expected values come from the scene geometry and the documented rules (seconds of lost
buffer, two score stages, confirmation), or from motmetrics and brute force, never from the
code under test.
"""

from __future__ import annotations

import itertools

import motmetrics as mm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge_agent.detect.detections import Detections
from edge_agent.errors import ConfigError
from edge_agent.track import ByteTracker, TrackerConfig, iou_matrix, linear_assignment


def det(*boxes: tuple[float, float, float, float], score: float = 0.9, cls: int = 0) -> Detections:
    """Detections of the given xyxy pixel boxes, all with one score and class."""
    n = len(boxes)
    return Detections.from_arrays(np.array(boxes, float).reshape(n, 4), [score] * n, [cls] * n)


PERSON = (100.0, 100.0, 150.0, 250.0)


# --- pure parts --------------------------------------------------------------------------------

box_st = st.tuples(
    st.floats(0, 1000), st.floats(0, 1000), st.floats(1, 300), st.floats(1, 300)
).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))


@settings(max_examples=60, deadline=None)
@given(st.lists(box_st, min_size=1, max_size=8), st.lists(box_st, min_size=1, max_size=8))
def test_iou_matrix_matches_motmetrics_symmetric_and_bounded(a: list, b: list) -> None:
    ab = iou_matrix(np.array(a), np.array(b))
    ba = iou_matrix(np.array(b), np.array(a))

    def xywh(boxes: list) -> np.ndarray:
        x = np.array(boxes)
        return np.concatenate([x[:, :2], x[:, 2:] - x[:, :2]], axis=1)

    reference = mm.distances.boxiou(xywh(a)[:, None], xywh(b)[None, :])
    np.testing.assert_allclose(ab, reference, atol=1e-9)
    np.testing.assert_allclose(ab, ba.T, atol=1e-12)
    assert np.all((ab >= 0) & (ab <= 1))
    np.testing.assert_allclose(np.diag(iou_matrix(np.array(a), np.array(a))), 1.0, atol=1e-9)


def brute_force_best(cost: np.ndarray, limit: float) -> float:
    """Lowest sum of (cost - limit) over all partial one-to-one matchings of pairs < limit."""
    n, m = cost.shape
    best = 0.0
    for choice in itertools.product(range(-1, m), repeat=n):
        cols = [c for c in choice if c >= 0]
        if len(cols) != len(set(cols)):
            continue
        pairs = [(r, c) for r, c in enumerate(choice) if c >= 0]
        if any(cost[r, c] >= limit for r, c in pairs):
            continue
        best = min(best, sum(cost[r, c] - limit for r, c in pairs))
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda n: st.integers(1, 4).flatmap(
            lambda m: st.lists(st.floats(0, 1), min_size=n * m, max_size=n * m).map(
                lambda v: np.array(v).reshape(n, m)
            )
        )
    ),
    st.floats(0.05, 1.0),
)
def test_linear_assignment_is_optimal_and_respects_limit(cost: np.ndarray, limit: float) -> None:
    matches, free_rows, free_cols = linear_assignment(cost, limit)
    assert np.all(cost[matches[:, 0], matches[:, 1]] < limit)
    assert sorted([*matches[:, 0], *free_rows]) == list(range(cost.shape[0]))
    assert sorted([*matches[:, 1], *free_cols]) == list(range(cost.shape[1]))
    got = float(np.sum(cost[matches[:, 0], matches[:, 1]] - limit))
    assert got == pytest.approx(brute_force_best(cost, limit), abs=1e-9)


def test_linear_assignment_prefers_one_good_pair_to_two_poor_ones() -> None:
    # lapjv-with-cost-limit semantics (ByteTrack): A-1 at 0.1 beats A-2 + B-1 at 0.75 each,
    # because each unmatched side costs limit / 2 = 0.4: 0.1 + 0.8 < 1.5.
    cost = np.array([[0.1, 0.75], [0.75, np.inf]])
    matches, _, _ = linear_assignment(cost, 0.8)
    assert matches.tolist() == [[0, 0]]


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(0, 1500),
    y=st.floats(0, 800),
    w=st.floats(10, 200),
    h=st.floats(20, 400),
    fx=st.floats(-0.25, 0.25),
    fy=st.floats(-0.25, 0.25),
    frames=st.integers(3, 60),
    fps=st.sampled_from([3.0, 10.0, 30.0]),
)
def test_one_object_at_constant_velocity_keeps_one_id(
    *, x: float, y: float, w: float, h: float, fx: float, fy: float, frames: int, fps: float
) -> None:
    # Speed up to a quarter of the box size per frame: the first step, before any velocity is
    # known, still overlaps (IoU >= 0.39, cost <= 0.65 < match_thresh 0.8).
    vx, vy = fx * w, fy * h
    tracker = ByteTracker(TrackerConfig(), frame_rate=fps)
    ids = set()
    for k in range(frames):
        box = (x + vx * k, y + vy * k, x + vx * k + w, y + vy * k + h)
        out = tracker.update(det(box))
        assert len(out) == 1
        ids.add(int(out.track_id[0]))
        np.testing.assert_allclose(
            out.xyxy[0], np.array(box, np.float32), atol=1e-3
        )  # the detection box
        assert out.hits[0] == k + 1
    assert ids == {1}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 6), st.floats(0.0, 1.0)), max_size=6),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 25),
)
def test_ids_are_never_reused_and_unique_per_frame(frames: list, reset_at: int) -> None:
    # People on a 7-slot grid, appearing and vanishing at random with random scores. A lost
    # track may come back with its own id; a new track must never get an id given before.
    tracker = ByteTracker(TrackerConfig(lost_track_s=0.2), frame_rate=10.0)
    seen: set[int] = set()
    before_reset: set[int] = set()
    for k, people in enumerate(frames):
        if k == reset_at:
            tracker.reset()
            before_reset = set(seen)
        slots = dict(people)  # one box per slot
        boxes = [(100.0 * s, 50.0, 100.0 * s + 60, 200.0) for s in slots]
        d = Detections.from_arrays(
            np.array(boxes, float).reshape(-1, 4), list(slots.values()), [0] * len(slots)
        )
        ids = tracker.update(d).track_id.tolist()
        assert len(ids) == len(set(ids))
        assert not (set(ids) & before_reset), "an id from before reset() came back"
        for i in set(ids) - seen:
            assert i > max(seen, default=0), f"new track got id {i}, not above {seen}"
        seen |= set(ids)


# --- lifecycle rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fps", "gap_s", "same_id"),
    [(3.0, 0.67, True), (3.0, 1.67, False), (30.0, 0.67, True), (30.0, 1.67, False)],
)
def test_lost_track_is_kept_for_seconds_not_frames(fps: float, gap_s: float, same_id: bool) -> None:
    tracker = ByteTracker(TrackerConfig(lost_track_s=1.0), frame_rate=fps)
    for _ in range(5):
        before = tracker.update(det(PERSON))
    for _ in range(round(gap_s * fps)):
        assert len(tracker.update(Detections.empty())) == 0
    after = tracker.update(det(PERSON))
    if same_id:
        assert after.track_id.tolist() == before.track_id.tolist()
        assert after.hits.tolist() == [6]
    else:
        # Expired: the person is a new track, tentative on its first frame, confirmed next.
        assert len(after) == 0
        again = tracker.update(det(PERSON))
        assert again.track_id.tolist() == [before.track_id[0] + 1]


def test_low_score_detections_continue_a_track_but_never_start_one() -> None:
    def run(config: TrackerConfig) -> list[list[int]]:
        tracker = ByteTracker(config, frame_rate=10.0)
        scores = [0.9, 0.9, 0.9, 0.3, 0.3, 0.3, 0.9]
        out = []
        for k, s in enumerate(scores):
            x = 100.0 + 4 * k
            out.append(tracker.update(det((x, 100, x + 50, 250), score=s)).track_id.tolist())
        return out

    # Occluded frames (score 0.3) keep the id through the second, low-score stage.
    assert run(TrackerConfig()) == [[1], [1], [1], [1], [1], [1], [1]]
    # Without the low stage (low threshold = high threshold) the track is lost meanwhile.
    single = TrackerConfig(track_low_thresh=0.5)
    assert run(single) == [[1], [1], [1], [], [], [], [1]]
    # A low-score person alone never becomes a track.
    tracker = ByteTracker(TrackerConfig(), frame_rate=10.0)
    assert all(len(tracker.update(det(PERSON, score=0.3))) == 0 for _ in range(10))


def test_new_track_threshold() -> None:
    tracker = ByteTracker(TrackerConfig(new_track_thresh=0.6), frame_rate=10.0)
    assert all(len(tracker.update(det(PERSON, score=0.55))) == 0 for _ in range(5))
    tracker.update(det(PERSON, score=0.65))
    assert tracker.update(det(PERSON, score=0.55)).track_id.tolist() == [1]


def test_confirmation_needs_min_hits_consecutive_matches() -> None:
    config = TrackerConfig(min_hits=3, activate_on_first_frame=False)
    tracker = ByteTracker(config, frame_rate=10.0)
    outs = [tracker.update(det(PERSON)) for _ in range(4)]
    assert [len(o) for o in outs] == [0, 0, 1, 1]
    assert outs[2].hits.tolist() == [3]
    # A tentative track that misses a frame is dropped: every other frame never confirms.
    tracker = ByteTracker(config, frame_rate=10.0)
    for k in range(10):
        out = tracker.update(det(PERSON) if k % 2 == 0 else Detections.empty())
        assert len(out) == 0


def test_first_frame_tracks_are_confirmed_at_once_by_default() -> None:
    tracker = ByteTracker(TrackerConfig(), frame_rate=10.0)
    assert tracker.update(det(PERSON, (300, 100, 350, 250))).track_id.tolist() == [1, 2]
    tracker = ByteTracker(TrackerConfig(activate_on_first_frame=False), frame_rate=10.0)
    assert len(tracker.update(det(PERSON))) == 0
    assert tracker.update(det(PERSON)).track_id.tolist() == [1]


def test_classes_never_share_a_track() -> None:
    tracker = ByteTracker(TrackerConfig(), frame_rate=10.0)
    tracker.update(det(PERSON, cls=0))
    # The same box now labelled another class: a different object, not the person's track.
    assert len(tracker.update(det(PERSON, cls=1))) == 0
    out = tracker.update(det(PERSON, cls=1))
    assert out.track_id.tolist() == [2] and out.class_id.tolist() == [1]


def test_two_people_crossing_keep_their_ids() -> None:
    # Constant velocity lets the Kalman prediction carry each id through the full overlap.
    tracker = ByteTracker(TrackerConfig(), frame_rate=10.0)
    for k in range(30):
        a = (100.0 + 10 * k, 100.0, 160.0 + 10 * k, 260.0)
        b = (400.0 - 10 * k, 104.0, 460.0 - 10 * k, 264.0)
        out = tracker.update(det(a, b))
        ids = {
            tuple(np.round(box, 3)): int(i) for box, i in zip(out.xyxy, out.track_id, strict=True)
        }
        assert ids == {a: 1, b: 2}


def test_reset_forgets_tracks_and_does_not_reuse_ids() -> None:
    tracker = ByteTracker(TrackerConfig(), frame_rate=10.0)
    tracker.update(det(PERSON))
    tracker.reset()
    assert tracker.frame_count == 0
    assert tracker.update(det(PERSON)).track_id.tolist() == [2]


def test_bad_settings_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ConfigError, match="frame_rate"):
        ByteTracker(TrackerConfig(), frame_rate=0.0)
    with pytest.raises(ConfigError, match="use_appearance"):
        ByteTracker(TrackerConfig(use_appearance=True), frame_rate=10.0)
    with pytest.raises(ValidationError, match="track_low_thresh"):
        TrackerConfig(track_low_thresh=0.7, track_high_thresh=0.5)
    assert TrackerConfig(lost_track_s=2.0).lost_track_frames(3.0) == 6
    assert TrackerConfig(lost_track_s=2.0).lost_track_frames(30.0) == 60
