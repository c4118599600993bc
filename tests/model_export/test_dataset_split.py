"""The pure cores of the dataset tooling: fps sampling, near-duplicates, YOLO rows, the split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_export.dataset.errors import DatasetError
from model_export.dataset.export import format_rows, yolo_rows
from model_export.dataset.frames import FrameRecord
from model_export.dataset.sampling import (
    THUMB_SIZE,
    FpsSampler,
    NearDuplicateFilter,
    changed_fraction,
    thumbnail,
)
from model_export.dataset.split import scene_keys, split_groups


@settings(max_examples=150, deadline=None)
@given(
    source_fps=st.floats(1.0, 60.0),
    ratio=st.floats(0.05, 1.0),
    n_frames=st.integers(1, 400),
)
def test_sampler_keeps_one_frame_nearest_each_target(
    source_fps: float, ratio: float, n_frames: int
) -> None:
    fps = source_fps * ratio
    period = 1.0 / source_fps
    sampler = FpsSampler(fps, period)
    times = [i * period for i in range(n_frames)]
    kept = [t for t in times if sampler.select(t)]
    last = times[-1]
    # Targets k / fps reachable within the clip (its last frame is within half a period).
    targets = [k / fps for k in range(math.floor((last + period / 2) * fps + 1e-9) + 1)]
    assert len(kept) == len(targets)
    for t, target in zip(kept, targets, strict=True):
        assert abs(t - target) <= period / 2 + 1e-6


def test_sampler_rejects_a_non_positive_fps() -> None:
    with pytest.raises(ValueError, match="fps"):
        FpsSampler(0.0, 0.1)


def _scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)


def test_near_duplicates_are_dropped_and_changes_kept() -> None:
    base = np.full((360, 640, 3), 90, np.uint8)
    base[100:200, 50:150] = 200  # a shelf
    noisy = np.clip(
        base.astype(np.int16) + np.random.default_rng(1).integers(-4, 5, base.shape), 0, 255
    ).astype(np.uint8)
    person = base.copy()
    person[150:330, 400:460] = 20  # a person about 5% of the frame steps in
    f = NearDuplicateFilter()
    assert f.keep(thumbnail(base))
    assert not f.keep(thumbnail(base))  # identical
    assert not f.keep(thumbnail(noisy))  # sensor/compression noise
    assert f.keep(thumbnail(person))
    assert not f.keep(thumbnail(person))
    assert f.keep(thumbnail(base))  # the person left: compared with the last kept frame
    assert thumbnail(base).shape == (THUMB_SIZE[1], THUMB_SIZE[0])
    assert changed_fraction(thumbnail(base), thumbnail(person)) > 0.03
    keep_all = NearDuplicateFilter(min_change=0.0)
    assert keep_all.keep(thumbnail(base)) and keep_all.keep(thumbnail(base))


def test_slow_drift_adds_up_until_a_frame_is_kept() -> None:
    f = NearDuplicateFilter()
    frame = np.full((360, 640), 100, np.uint8)
    previous = thumbnail(frame)
    kept = 0
    for step in range(1, 241):  # a shadow creeping 1 pixel per frame
        frame[:, :step] = 10
        thumb = thumbnail(frame)
        assert changed_fraction(thumb, previous) < f.min_change  # each step alone is tiny
        previous = thumb
        kept += f.keep(thumb)
    # Compared with the previous frame nothing would ever be kept after the first.
    assert 10 < kept < 200


box_strategy = st.tuples(
    st.floats(-50, 700), st.floats(-50, 400), st.floats(0, 300), st.floats(0, 300)
).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))


@settings(max_examples=150, deadline=None)
@given(boxes=st.lists(box_strategy, max_size=20), width=st.integers(1, 2000))
def test_yolo_rows_round_trip_to_clipped_pixel_boxes(
    boxes: list[tuple[float, float, float, float]], width: int
) -> None:
    height = 480
    xyxy = np.array(boxes, np.float64).reshape(-1, 4)
    cls = np.arange(len(xyxy), dtype=np.int64) % 3
    rows = yolo_rows(xyxy, cls, width, height)
    clipped = xyxy.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
    area = (clipped[:, 2] - clipped[:, 0] > 0) & (clipped[:, 3] - clipped[:, 1] > 0)
    assert len(rows) == int(area.sum())
    assert ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1)).all()
    back = np.stack(
        [
            (rows[:, 1] - rows[:, 3] / 2) * width,
            (rows[:, 2] - rows[:, 4] / 2) * height,
            (rows[:, 1] + rows[:, 3] / 2) * width,
            (rows[:, 2] + rows[:, 4] / 2) * height,
        ],
        axis=1,
    )
    np.testing.assert_allclose(back, clipped[area], atol=1e-6 * max(width, height))
    assert rows[:, 0].tolist() == cls[area].tolist()
    # The text form keeps the values to 1e-6 of the image size.
    parsed = [[float(v) for v in line.split()] for line in format_rows(rows).splitlines()]
    np.testing.assert_allclose(np.array(parsed).reshape(-1, 5), rows, atol=1e-6)


group_sizes = st.dictionaries(
    st.text("abcdefghij/._-", min_size=1, max_size=12), st.integers(1, 500), max_size=30
)


@settings(max_examples=300, deadline=None)
@given(sizes=group_sizes, fraction=st.floats(0.05, 0.5), seed=st.integers(0, 2**31))
def test_split_never_puts_a_group_on_both_sides(
    sizes: dict[str, int], fraction: float, seed: int
) -> None:
    if len(sizes) < 2:
        with pytest.raises(DatasetError, match="at least 2"):
            split_groups(sizes, fraction, seed)
        return
    split = split_groups(sizes, fraction, seed)
    assert not split.train & split.val
    assert split.train | split.val == set(sizes)
    assert split.train and split.val
    assert split_groups(dict(reversed(list(sizes.items()))), fraction, seed) == split
    val = sum(sizes[g] for g in split.val)
    target = fraction * sum(sizes.values())
    if val > min(sizes.values()):  # not the fallback where no group was small enough
        assert abs(val - target) <= max(sizes.values()) / 2 + 1e-9


def test_split_of_many_small_scenes_is_close_to_80_20() -> None:
    sizes = {f"video-{i}": 10 + i % 7 for i in range(40)}
    split = split_groups(sizes)
    val = sum(sizes[g] for g in split.val)
    assert abs(val / sum(sizes.values()) - 0.2) < 0.02


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_rejects_a_fraction_outside_0_1(fraction: float) -> None:
    with pytest.raises(DatasetError, match="between 0 and 1"):
        split_groups({"a": 1, "b": 1}, fraction)


def test_scene_is_the_video_even_for_a_stray_frame_in_its_folder() -> None:
    frames = {
        "clip/clip_f000000.jpg": FrameRecord(
            image="clip/clip_f000000.jpg", video="/v/clip.mp4", frame_index=0, time_s=0.0
        )
    }
    keys = scene_keys(
        ["clip/clip_f000000.jpg", "clip/clip_f000099.jpg", "shelf-a/1.jpg", "top.jpg"], frames
    )
    assert keys == {
        "clip/clip_f000000.jpg": "video:/v/clip.mp4",
        "clip/clip_f000099.jpg": "video:/v/clip.mp4",  # not indexed, same folder: same video
        "shelf-a/1.jpg": "folder:shelf-a",
        "top.jpg": "folder:.",
    }
