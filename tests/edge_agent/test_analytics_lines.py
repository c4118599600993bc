"""Footfall lines: properties on generated trajectories, regressions, and real MOT trajectories.

Trajectories are generated in line coordinates (u along the segment, 0..1 between the end
points; d = signed distance, positive on the inside), so the expected counts follow from the
definition alone: a track counts "in" once iff it was at least ``h`` outside and *later* at
least ``h`` inside (and symmetrically "out"), provided it stays over the segment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.analytics import LineConfig, LineCounter
from edge_agent.analytics.geometry import normalised_feet
from edge_agent.track.tracks import Tracks
from tests.edge_agent.analytics_helpers import H, W, tracks_at


def run(counter: LineCounter, frames: list[Tracks], fps: float = 10.0) -> list:
    events = []
    for k, tr in enumerate(frames):
        events += counter.update(tr.track_id, normalised_feet(tr, W, H), tr.hits, k / fps)
    return events


# A line in general position: end points a, b; inside on the left of a->b.
A = np.array([0.2, 0.35])
B = np.array([0.8, 0.65])
DIR = (B - A) / np.linalg.norm(B - A)
NORMAL = np.array([-DIR[1], DIR[0]])  # left of a->b, the side of `inside` below
LEN = float(np.linalg.norm(B - A))
INSIDE = tuple(((A + B) / 2 + 0.2 * NORMAL).tolist())


def line(h: float, confirm: int = 1) -> LineConfig:
    return LineConfig(
        id="door", points=(tuple(A), tuple(B)), inside=INSIDE, hysteresis=h, confirm_frames=confirm
    )


def to_xy(u: npt.ArrayLike, d: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Line coordinates (fraction along the segment, signed distance) to normalised x, y."""
    u, d = np.asarray(u, np.float64), np.asarray(d, np.float64)
    return A + u[..., None] * LEN * DIR + d[..., None] * NORMAL


def expected(d: list[float], h: float, confirm: int = 1) -> tuple[int, int]:
    """(in, out) by definition: the first side commits as soon as the foot is at least h on
    it; the other side commits once the foot is at least h on it for ``confirm`` frames in a
    row, which is a crossing, counted once per direction."""
    side = run_side = run_n = 0
    n_in = n_out = 0
    for x in d:
        now = 1 if x >= h else -1 if x <= -h else 0
        if now in (0, side):
            run_side = run_n = 0
            continue
        run_n = run_n + 1 if run_side == now else 1
        run_side = now
        if run_n >= confirm or side == 0:
            if side == -now:
                n_in, n_out = (1, n_out) if now > 0 else (n_in, 1)
            side, run_side, run_n = now, 0, 0
    return n_in, n_out


hysteresis = st.floats(0.005, 0.05)


@st.composite
def walks_over_segment(
    draw: st.DrawFn,
) -> tuple[float, int, list[list[tuple[float, float]]]]:
    """Several tracks random-walking over the segment (0.02 <= u <= 0.98), crossing at will,
    with a line needing 1 to 3 confirming frames."""
    h = draw(hysteresis)
    confirm = draw(st.integers(1, 3))
    n_tracks = draw(st.integers(1, 4))
    n_frames = draw(st.integers(2, 40))
    step = st.floats(-0.08, 0.08)
    walks = []
    for _ in range(n_tracks):
        u = draw(st.floats(0.02, 0.98))
        d = draw(st.floats(-0.15, 0.15))
        pts = []
        for _ in range(n_frames):
            u = float(np.clip(u + draw(st.floats(-0.05, 0.05)), 0.02, 0.98))
            d = float(np.clip(d + draw(step), -0.2, 0.2))
            if abs(abs(d) - h) < 1e-4:  # keep clear of the exact threshold (float rounding)
                d += 3e-4
            pts.append((u, d))
        walks.append(pts)
    return h, confirm, walks


@given(walks_over_segment())
@settings(max_examples=150, deadline=None)
def test_each_crossing_counted_exactly_once_per_direction(
    case: tuple[float, int, list[list[tuple[float, float]]]],
) -> None:
    h, confirm, walks = case
    counter = LineCounter([line(h, confirm)], min_hits=1)
    n_frames = len(walks[0])
    frames = [
        tracks_at(
            list(range(1, len(walks) + 1)),
            [to_xy(w[k][0], w[k][1]) for w in walks],
            [k + 1] * len(walks),
        )
        for k in range(n_frames)
    ]
    events = run(counter, frames)
    for tid, w in enumerate(walks, start=1):
        want_in, want_out = expected([d for _, d in w], h, confirm)
        got = [e.direction for e in events if e.track_id == tid]
        assert got.count("in") == want_in, (tid, w)
        assert got.count("out") == want_out, (tid, w)
    assert tuple(counter.counts[0]) == (
        sum(e.direction == "in" for e in events),
        sum(e.direction == "out" for e in events),
    )


@given(
    h=hysteresis,
    start_side=st.sampled_from([-1.0, 1.0]),
    jitter=st.lists(st.tuples(st.floats(0.05, 0.95), st.floats(-0.999, 0.999)), min_size=1),
)
@settings(max_examples=100, deadline=None)
def test_jitter_within_hysteresis_never_counts(
    h: float, start_side: float, jitter: list[tuple[float, float]]
) -> None:
    # The track commits to one side first, then wanders within +-h of the line, crossing it
    # back and forth as often as it likes: never a crossing.
    path = [(0.5, start_side * 3 * h)] + [(u, f * h) for u, f in jitter]
    counter = LineCounter([line(h)], min_hits=1)
    frames = [tracks_at([7], to_xy(u, d), [k + 1]) for k, (u, d) in enumerate(path)]
    assert run(counter, frames) == []
    assert counter.counts.sum() == 0


@given(
    h=hysteresis,
    beyond=st.one_of(st.floats(-1.0, -0.02), st.floats(1.02, 2.0)),
    d=st.lists(st.floats(-0.3, 0.3), min_size=2, max_size=30),
    du=st.lists(st.floats(-0.01, 0.01), min_size=30, max_size=30),
)
@settings(max_examples=100, deadline=None)
def test_track_beyond_the_segment_end_never_counts(
    h: float, beyond: float, d: list[float], du: list[float]
) -> None:
    # Every step stays beyond one end point, so the foot path never meets the segment, however
    # far it goes from one side of the (extended) line to the other.
    u = [beyond + (x if beyond > 1 else -x) for x in np.abs(du[: len(d)])]
    counter = LineCounter([line(h)], min_hits=1)
    frames = [tracks_at([3], to_xy(u[k], d[k]), [k + 1]) for k in range(len(d))]
    assert run(counter, frames) == []


def test_walking_around_the_end_then_back_through_the_segment_counts_out_only() -> None:
    # Outside -> around the far end -> inside (not a crossing) -> back out through the middle.
    path = [(0.5, -0.1), (1.3, -0.1), (1.3, 0.1), (0.5, 0.1), (0.5, -0.1)]
    counter = LineCounter([line(0.02)], min_hits=1)
    frames = [tracks_at([1], to_xy(u, d), [k + 1]) for k, (u, d) in enumerate(path)]
    events = run(counter, frames)
    assert [(e.direction, e.t_s) for e in events] == [("out", 0.4)]


def test_unconfirmed_track_counted_only_once_confirmed_at_its_crossing_time() -> None:
    counter = LineCounter([line(0.02)], min_hits=3)
    # Track 1 crosses in on its 2nd frame (hits 2 < 3), is confirmed on its 4th.
    # Track 2 crosses in the same way but vanishes after 2 frames: a ghost, never counted.
    d1 = [-0.1, 0.1, 0.12, 0.14]
    frames = []
    for k, d in enumerate(d1):
        ids, pts, hits = [1], [to_xy(0.5, d)], [k + 1]
        if k < 2:
            ids, pts, hits = [*ids, 2], [*pts, to_xy(0.3, d)], [*hits, k + 1]
        frames.append(tracks_at(ids, pts, hits))
    per_frame = []
    for k, tr in enumerate(frames):
        per_frame.append(counter.update(tr.track_id, normalised_feet(tr, W, H), tr.hits, k / 10))
    assert [len(e) for e in per_frame] == [0, 0, 1, 0]  # hits reach 3 on frame index 2
    crossing = per_frame[2][0]
    assert (crossing.track_id, crossing.direction, crossing.t_s) == (1, "in", 0.1)
    assert tuple(counter.counts[0]) == (1, 0)


def test_flicker_back_and_forth_counts_at_most_once_per_direction() -> None:
    d = [-0.1, 0.1, -0.1, 0.1, -0.1, 0.1, -0.1]
    counter = LineCounter([line(0.02)], min_hits=1)
    frames = [tracks_at([5], to_xy(0.5, x), [k + 1]) for k, x in enumerate(d)]
    events = run(counter, frames)
    assert [e.direction for e in events] == ["in", "out"]


def test_one_frame_glitch_past_the_band_is_not_a_crossing() -> None:
    # Regression (one-by-one footage, t = 68.4 s): a standing person's box stretched downwards
    # for one frame, putting the feet past the entry line's band: a false "out". With two
    # confirming frames the glitch commits nothing; a real exit (two frames past) still counts,
    # at the time of its first frame past the band.
    counter = LineCounter([line(0.02, confirm=2)], min_hits=1)
    d = [0.1, 0.1, -0.05, 0.1, 0.1, 0.0, -0.05, -0.06, -0.07]
    frames = [tracks_at([3], to_xy(0.5, x), [k + 1]) for k, x in enumerate(d)]
    events = run(counter, frames)
    assert [(e.direction, e.t_s) for e in events] == [("out", 0.6)]
    # Without the check the glitch counts a false out and in, and the real exit is lost
    # (once per direction per track).
    counter = LineCounter([line(0.02, confirm=1)], min_hits=1)
    events = run(counter, frames)
    assert [(e.direction, e.t_s) for e in events] == [("out", 0.2), ("in", 0.3)]


def test_identity_switch_outside_the_band_keeps_the_count_inside_it_loses_it() -> None:
    # Known limit, stated in edge_agent.analytics.lines: a new id has no committed side yet.
    h = 0.02
    counter = LineCounter([line(h)], min_hits=1)
    # Switch well inside (d = 0.1 > h): old id already counted, new id just commits: 1 in.
    frames = [
        tracks_at([1], to_xy(0.5, -0.1), [1]),
        tracks_at([1], to_xy(0.5, 0.1), [2]),
        tracks_at([2], to_xy(0.5, 0.12), [1]),
    ]
    assert [e.track_id for e in run(counter, frames)] == [1]
    counter = LineCounter([line(h)], min_hits=1)
    # Switch on the line (|d| < h): the new id first commits on the inside: the crossing is lost.
    frames = [
        tracks_at([3], to_xy(0.5, -0.1), [1]),
        tracks_at([3], to_xy(0.5, -0.005), [2]),
        tracks_at([4], to_xy(0.5, 0.005), [1]),
        tracks_at([4], to_xy(0.5, 0.1), [2]),
    ]
    assert run(counter, frames) == []


def test_several_lines_are_independent() -> None:
    horizontal = LineConfig(id="h", points=((0.0, 0.5), (1.0, 0.5)), inside=(0.5, 0.1))
    vertical = LineConfig(id="v", points=((0.5, 0.0), (0.5, 1.0)), inside=(0.9, 0.5))
    counter = LineCounter([horizontal, vertical], min_hits=1)
    # Track 1 goes up through the horizontal line; track 2 goes left through the vertical one.
    path1 = [(0.2, 0.8), (0.2, 0.6), (0.2, 0.4), (0.2, 0.2)]
    path2 = [(0.8, 0.8), (0.6, 0.8), (0.4, 0.8), (0.3, 0.8)]
    frames = [
        tracks_at([1, 2], [p1, p2], [k + 1] * 2)
        for k, (p1, p2) in enumerate(zip(path1, path2, strict=True))
    ]
    events = run(counter, frames)
    assert {(e.line_id, e.track_id, e.direction) for e in events} == {
        ("h", 1, "in"),
        ("v", 2, "out"),
    }
    assert counter.totals() == {"h": (1, 0), "v": (0, 1)}


def load_mot_gt(path: Path) -> npt.NDArray[np.float64]:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_real_trajectories_tud_stadtmitte_vertical_line(assets: Path) -> None:
    """Real pedestrian trajectories (TUD-Stadtmitte ground truth, 640x480, 25 fps) against a
    full-height line at x = 0.5: counts equal the definition applied to each track's feet."""
    gt = load_mot_gt(assets / "mot/motmetrics_data/TUD-Stadtmitte/gt.txt")
    w, h_px, fps, hyst = 640, 480, 25.0, 0.02
    door = LineConfig(id="mid", points=((0.5, 0.0), (0.5, 1.0)), inside=(0.9, 0.5), hysteresis=hyst)
    counter = LineCounter([door], min_hits=3)
    hits: dict[int, int] = {}
    events = []
    for frame in np.unique(gt[:, 0]).astype(int):
        rows = gt[gt[:, 0] == frame]
        ids = rows[:, 1].astype(np.int64)
        for i in ids:
            hits[int(i)] = hits.get(int(i), 0) + 1
        xyxy = np.column_stack(
            [rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]]
        )
        tr = Tracks(
            xyxy.astype(np.float32),
            np.ones(len(ids), np.float32),
            np.zeros(len(ids), np.int32),
            ids,
            np.array([hits[int(i)] for i in ids], np.int32),
        )
        events += counter.update(ids, normalised_feet(tr, w, h_px), tr.hits, (frame - 1) / fps)
    want_in = want_out = 0
    for tid in np.unique(gt[:, 1]):
        rows = gt[gt[:, 1] == tid]
        x = (rows[:, 2] + rows[:, 4] / 2) / w  # foot x, from the raw annotation
        n_in, n_out = expected(list(x - 0.5), hyst)  # inside is the right-hand side
        want_in, want_out = want_in + n_in, want_out + n_out
    assert want_in + want_out > 0  # the footage does cross the line
    assert tuple(counter.counts[0]) == (want_in, want_out)
    assert len(events) == want_in + want_out
