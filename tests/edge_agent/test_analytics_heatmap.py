"""Heatmap: person-seconds on real trajectories, the frame-gap cap, and the colour overlay."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.analytics import CameraAnalytics, CameraAnalyticsConfig, HeatmapAccumulator
from edge_agent.analytics.heatmap import overlay_heatmap
from edge_agent.track.tracks import Tracks


def tud_frames(assets: Path, name: str) -> tuple[np.ndarray, list[tuple[int, Tracks]]]:
    """MOT ground truth as per-frame Tracks; hits = frames the id was seen so far."""
    gt = np.loadtxt(assets / f"mot/motmetrics_data/{name}/gt.txt", delimiter=",", ndmin=2)
    hits: dict[int, int] = {}
    frames = []
    for frame in range(1, int(gt[:, 0].max()) + 1):
        rows = gt[gt[:, 0] == frame]
        ids = rows[:, 1].astype(np.int64)
        for i in ids:
            hits[int(i)] = hits.get(int(i), 0) + 1
        xyxy = np.column_stack(
            [rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]]
        ).astype(np.float32)
        frames.append(
            (
                frame,
                Tracks(
                    xyxy,
                    np.ones(len(ids), np.float32),
                    np.zeros(len(ids), np.int32),
                    ids,
                    np.array([hits[int(i)] for i in ids], np.int32),
                ),
            )
        )
    return gt, frames


def test_person_seconds_equal_time_visible_on_real_trajectories(assets: Path) -> None:
    """TUD-Stadtmitte (640x480, 25 fps): each confirmed sighting stands for one frame period
    (none for the very first frame, which has no previous frame)."""
    fps, w, h, grid_w, grid_h = 25.0, 640, 480, 16, 12
    gt, frames = tud_frames(assets, "TUD-Stadtmitte")
    cfg = CameraAnalyticsConfig.model_validate(
        {"heatmap": {"grid": [grid_w, grid_h]}, "rollup_interval_s": 2, "min_hits": 3}
    )
    cam = CameraAnalytics(cfg, store_id="s", camera_id="c", epoch_start_s=1_000_000_001.0)
    heatmaps = []
    for frame, tr in frames:
        heatmaps += cam.update(tr, (frame - 1) / fps, w, h).heatmaps
    heatmaps += cam.flush(len(frames) / fps).heatmaps

    # Independent: per track, its sightings from the 3rd on, skipping video frame 1.
    expected = np.zeros((grid_h, grid_w))
    visible_s = 0.0
    for tid in np.unique(gt[:, 1]):
        rows = gt[gt[:, 1] == tid]
        rows = rows[np.argsort(rows[:, 0])][2:]  # confirmed from the 3rd sighting
        rows = rows[rows[:, 0] > 1]
        visible_s += len(rows) / fps
        for r in rows:
            cx = min(int((r[2] + r[4] / 2) / w * grid_w), grid_w - 1)
            cy = min(int((r[3] + r[5]) / h * grid_h), grid_h - 1)
            expected[cy, cx] += 1 / fps
    assert visible_s > 30  # ten people over seven seconds
    assert cam.heatmap_counts().sum() == pytest.approx(visible_s, rel=1e-9)
    np.testing.assert_allclose(cam.heatmap_counts(), expected, rtol=1e-9, atol=1e-12)
    # The per-bucket heatmaps add up to the same, each on an aligned 2 s bucket.
    assert sum(sum(hm.person_seconds) for hm in heatmaps) == pytest.approx(visible_s, rel=1e-9)
    assert [hm.bucket_start for hm in heatmaps] == sorted({hm.bucket_start for hm in heatmaps})
    assert all(hm.bucket_start % 2 == 0 for hm in heatmaps)
    assert heatmaps[0].bucket_start == 1_000_000_000


def test_frame_gap_is_capped() -> None:
    acc_cfg = CameraAnalyticsConfig.model_validate(
        {"heatmap": {"grid": [4, 4], "max_dt_s": 0.5}, "min_hits": 1}
    )
    cam = CameraAnalytics(acc_cfg, store_id="s", camera_id="c")
    one = Tracks(
        np.array([[90, 10, 110, 60]], np.float32),  # foot at (100, 60) of 400x400: cell (0, 1)
        np.ones(1, np.float32),
        np.zeros(1, np.int32),
        np.array([1], np.int64),
        np.array([5], np.int32),
    )
    for t in (0.0, 0.2, 0.4, 5.0, 5.2):  # a 4.6 s stall counts as 0.5 s
        cam.update(one, t, 400, 400)
    counts = cam.heatmap_counts()
    assert counts[0, 1] == pytest.approx(0.2 + 0.2 + 0.5 + 0.2)
    assert counts.sum() == counts[0, 1]


def test_points_on_the_frame_edge_land_in_edge_cells() -> None:
    acc = HeatmapAccumulator((4, 2))
    acc.add(np.array([[1.0, 1.0], [0.0, 0.0], [-0.1, 1.3], [0.6, 0.49]]), 0.5)
    want = np.zeros((2, 4))
    want[1, 3] += 0.5  # bottom-right corner
    want[0, 0] += 0.5
    want[1, 0] += 0.5  # off the frame: clipped to the nearest cell
    want[0, 2] += 0.5
    np.testing.assert_array_equal(acc.take(), want)
    assert acc.counts.sum() == 0.0


def test_render_overlays_busy_cells_on_a_real_frame(assets: Path) -> None:
    cap = cv2.VideoCapture(str(assets / "videos/one-by-one-person-detection.mp4"))
    ok, background = cap.read()
    cap.release()
    assert ok, "could not read the sample video"
    h, w = background.shape[:2]  # 432 x 768
    counts = np.zeros((18, 32))
    counts[9, 16] = 40.0  # the busiest cell
    counts[2, 3] = 4.0  # a quiet one (a tenth of the peak)
    img = overlay_heatmap(counts, background)
    assert img.shape == background.shape and img.dtype == np.uint8
    cell_h, cell_w = h // 18, w // 32
    busy = (slice(9 * cell_h + 2, 10 * cell_h - 2), slice(16 * cell_w + 2, 17 * cell_w - 2))
    quiet = (slice(2 * cell_h + 2, 3 * cell_h - 2), slice(3 * cell_w + 2, 4 * cell_w - 2))
    untouched = np.ones((h, w), bool)
    untouched[9 * cell_h - 2 : 10 * cell_h + 2, 16 * cell_w - 2 : 17 * cell_w + 2] = False
    untouched[2 * cell_h - 2 : 3 * cell_h + 2, 3 * cell_w - 2 : 4 * cell_w + 2] = False
    # Cells without anyone are the background, pixel for pixel.
    np.testing.assert_array_equal(img[untouched], background[untouched])

    # The busiest cell turns red, the quiet one blue (JET), relative to the frame's own tint.
    def red_minus_blue(px: np.ndarray) -> float:
        return float(px[..., 2].astype(float).mean() - px[..., 0].astype(float).mean())

    assert red_minus_blue(img[busy]) > red_minus_blue(background[busy]) + 40
    assert red_minus_blue(img[quiet]) < red_minus_blue(background[quiet]) - 40


def test_render_rejects_a_non_bgr_background() -> None:
    with pytest.raises(ValueError, match="H x W x 3"):
        overlay_heatmap(np.ones((2, 2)), np.zeros((10, 10), np.uint8))
