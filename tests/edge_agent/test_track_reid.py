"""Appearance re-identification with the real OSNet model on real MOT17 frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.detect.detections import Detections
from edge_agent.errors import ModelError
from edge_agent.track import AppearanceEmbedder, ByteTracker, TrackerConfig
from edge_agent.track.mot_io import MotRows, read_mot

MOT17_04 = ("mot", "MOT17-mini", "train", "MOT17-04-FRCNN")


@pytest.fixture(scope="module")
def embedder(assets: Path) -> AppearanceEmbedder:
    return AppearanceEmbedder(assets / "models" / "reid" / "osnet_x0_25_msmt17.onnx", threads=2)


def visible_people(folder: Path) -> MotRows:
    """Hand-annotated pedestrians at least half visible (crops of them show the person)."""
    gt = read_mot(folder / "gt" / "gt.txt").pedestrians()
    return gt.select(gt.visibility >= 0.5)


def frame(folder: Path, number: int) -> np.ndarray:
    image = cv2.imread(str(folder / "img1" / f"{number:06d}.jpg"))
    assert image is not None
    return image


@pytest.mark.parametrize(("seq", "later"), [("MOT17-02-FRCNN", 4), ("MOT17-04-FRCNN", 8)])
def test_same_person_is_closer_than_different_people(
    assets: Path, embedder: AppearanceEmbedder, seq: str, later: int
) -> None:
    folder = assets / "mot" / "MOT17-mini" / "train" / seq
    people = visible_people(folder)
    first, second = people.select(people.frame == 1), people.select(people.frame == later)
    common = np.intersect1d(first.track_id, second.track_id)
    assert len(common) >= 8
    a = first.select(np.isin(first.track_id, common))
    b = second.select(np.isin(second.track_id, common))
    a = a.select(np.argsort(a.track_id))
    b = b.select(np.argsort(b.track_id))
    ea = embedder.embed(frame(folder, 1), a.xyxy)
    eb = embedder.embed(frame(folder, later), b.xyxy)
    np.testing.assert_allclose(np.linalg.norm(ea, axis=1), 1.0, atol=1e-5)
    sim = ea @ eb.T
    same = np.diag(sim)
    different = sim[~np.eye(len(common), dtype=bool)]
    # measured: same 0.92 / 0.91, different 0.47 / 0.44 (MOT17-02 / -04), a gap of ~0.45
    assert same.mean() - different.mean() >= 0.35
    # Every person's nearest crop in the other frame is themselves (measured: all of them).
    assert np.mean(sim.argmax(axis=1) == np.arange(len(common))) >= 0.9


def test_batched_crops_embed_like_single_ones(assets: Path, embedder: AppearanceEmbedder) -> None:
    folder = assets.joinpath(*MOT17_04)
    people = visible_people(folder)
    boxes = people.select(people.frame == 1).xyxy[:5]
    image = frame(folder, 1)
    batched = embedder.embed(image, boxes)
    single = np.concatenate([embedder.embed(image, boxes[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_lost_people_are_reassociated_by_appearance(
    assets: Path, embedder: AppearanceEmbedder
) -> None:
    """People tracked for 4 frames vanish for one frame, then reappear 200 px to the right
    (shifted image and boxes) on a camera sampled at 3 fps: no box overlaps where its person
    was, so only appearance can give back the right ids."""
    folder = assets.joinpath(*MOT17_04)
    people = visible_people(folder)
    shift = 200

    def run(config: TrackerConfig) -> tuple[int, int, int]:
        tracker = ByteTracker(config, 3.0, embedder if config.use_appearance else None)
        for f in range(1, 5):
            p = people.select(people.frame == f)
            out = tracker.update(Detections.from_arrays(p.xyxy, np.ones(len(p))), frame(folder, f))
        # Output boxes are the detections' own boxes: map each track back to its person.
        id_of = {
            int(p.track_id[np.flatnonzero((p.xyxy == box).all(axis=1))[0]]): int(i)
            for box, i in zip(out.xyxy, out.track_id, strict=True)
        }
        tracker.update(Detections.empty(), frame(folder, 5))
        p = people.select(people.frame == 6)
        image = np.zeros_like(frame(folder, 6))
        image[:, shift:] = frame(folder, 6)[:, :-shift]
        boxes = p.xyxy + np.array([shift, 0, shift, 0], np.float32)
        inside = boxes[:, 2] <= image.shape[1]
        p, boxes = p.select(inside), boxes[inside]
        # Geometry: no person's new box overlaps its old one (shift > widest box).
        assert p.xywh[:, 2].max() < shift
        out = tracker.update(Detections.from_arrays(boxes, np.ones(len(boxes))), image)
        right = wrong = 0
        for box, i in zip(out.xyxy, out.track_id, strict=True):
            person = int(p.track_id[np.flatnonzero((boxes == box).all(axis=1))[0]])
            right += id_of.get(person) == i
            wrong += id_of.get(person) != i and int(i) in id_of.values()
        return right, wrong, len(p)

    right, wrong, total = run(TrackerConfig(use_appearance=True))
    # measured: 23 of 23 people get their own id back, none gets someone else's
    assert total == 23 and right >= 20 and wrong == 0
    right, _, _ = run(TrackerConfig())
    assert right == 0  # motion alone cannot bridge the jump


def test_missing_or_invalid_model_raises_model_error(tmp_path: Path, assets: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        AppearanceEmbedder(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="cannot load"):
        AppearanceEmbedder(garbage)
    # A real ONNX model of the wrong kind (a face detector): its input is named in the error.
    with pytest.raises(ModelError, match=r"expected one input \[batch, 3, 256, 128\]"):
        AppearanceEmbedder(assets / "models" / "face" / "yunet_n_640_640.onnx")
