"""The privacy gate on real images with the real YuNet model: what leaves is hidden, bounded
and can only be made by the gate."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.sync import parse_record_body
from common.telemetry import Snapshot
from edge_agent.outbox import Outbox
from edge_agent.privacy import (
    HeatmapBackground,
    ImagePurpose,
    OutboxImageSink,
    PrivacyError,
    PrivacyGate,
    PrivacySettings,
    SafeImage,
)
from edge_agent.privacy.regions import clip_boxes, head_regions, pixelate


@pytest.fixture(scope="module")
def gate(assets: Path) -> PrivacyGate:
    return PrivacyGate.open(PrivacySettings(face_model=assets / "models/face/yunet_n_dynamic.onnx"))


def _decode(safe: SafeImage) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(safe.data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "released bytes do not decode"
    return img


def _detail(img: np.ndarray) -> float:
    """Fine detail: mean absolute Laplacian of the grey image."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def test_astronaut_face_is_found_and_pixelated(gate: PrivacyGate, assets: Path) -> None:
    img = cv2.imread(str(assets / "images/astronaut.png"))
    regions = gate.find_regions(img, np.zeros((0, 4)))
    assert len(regions.faces) == 1  # the one face in the image (assets README)
    x1, y1, x2, y2 = regions.faces[0]
    assert x1 < 200 and y1 < 80 and x2 > 260 and y2 > 170  # around the face at ~(178-270, 65-176)
    safe = gate.release(
        img, np.zeros((0, 4)), ImagePurpose.ALERT_SNAPSHOT, fmt="png", max_bytes=2_000_000
    )
    assert (safe.faces_blurred, safe.heads_blurred) == (1, 0)
    out = _decode(safe)
    assert out.shape == img.shape  # 512 px already fits max_side
    face = (slice(80, 160), slice(190, 260))
    assert _detail(out[face]) < 0.1 * _detail(img[face])
    # Outside the hidden region the image is untouched (PNG is lossless).
    fx1, fy1, fx2, fy2 = clip_boxes(regions.faces, 512, 512)[0]
    keep = np.ones(img.shape[:2], bool)
    keep[fy1:fy2, fx1:fx2] = False
    np.testing.assert_array_equal(out[keep], img[keep])


def test_head_region_of_a_person_is_hidden_even_without_a_face(gate: PrivacyGate) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)  # no face for YuNet to find
    person = np.array([[200.0, 60.0, 280.0, 300.0]])
    safe = gate.release(img, person, ImagePurpose.SAMPLE, fmt="png", max_bytes=2_000_000)
    assert (safe.faces_blurred, safe.heads_blurred) == (0, 1)
    out = _decode(safe)
    # Head region: top max(0.25 * 240, 0.6 * 80) = 60 px of the box, padded 0.15 * 80 = 12 px.
    hx1, hy1, hx2, hy2 = clip_boxes(head_regions(person), 640, 360)[0]
    assert (hx1, hy1, hx2, hy2) == (188, 48, 292, 120)
    assert _detail(out[hy1:hy2, hx1:hx2]) < 0.1 * _detail(img[hy1:hy2, hx1:hx2])
    body = (slice(130, 300), slice(200, 280))  # below the head: left as it is
    np.testing.assert_array_equal(out[body], img[body])


def test_pixelation_keeps_nothing_finer_than_a_cell() -> None:
    # Two faces that differ in every pixel but have the same mean colour per cell come out
    # identical: whatever made them different cannot be recovered from the result.
    rng = np.random.default_rng(7)
    base = rng.integers(60, 190, (40, 40, 3)).astype(np.int16)
    sign = np.where((np.indices((40, 40)).sum(axis=0) % 2) == 0, 1, -1)[..., None]
    other = base + 50 * sign  # +/- 50 alternating: each 10 x 10 cell keeps its mean
    a = pixelate(base.astype(np.uint8), blocks_across=4)
    b = pixelate(np.clip(other, 0, 255).astype(np.uint8), blocks_across=4)
    assert np.abs(base - other).min() == 50
    np.testing.assert_array_equal(a, b)


def test_release_downscales_and_bounds_the_size(
    gate: PrivacyGate, ultralytics_images: Path
) -> None:
    img = cv2.imread(str(ultralytics_images / "zidane.jpg"))  # 1280 x 720
    safe = gate.release(img, np.zeros((0, 4)), ImagePurpose.ALERT_SNAPSHOT)
    assert (safe.width, safe.height) == (640, 360)
    assert safe.media_type == "image/jpeg" and safe.data[:2] == b"\xff\xd8"
    assert safe.faces_blurred >= 2  # the two men's faces (assets README)
    assert safe.sha256 == hashlib.sha256(safe.data).hexdigest()
    noise = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    small = gate.release(noise, np.zeros((0, 4)), ImagePurpose.SAMPLE, max_bytes=40_000)
    assert len(small.data) <= 40_000  # noise at 640 x 360 is ~200 KB at quality 70
    assert _decode(small).shape[:2] == (small.height, small.width)


def test_safe_image_cannot_be_made_or_changed_outside_the_gate(gate: PrivacyGate) -> None:
    raw = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(PrivacyError, match="only be made by PrivacyGate"):
        SafeImage(
            data=raw.tobytes(),
            media_type="image/png",
            purpose=ImagePurpose.SAMPLE,
            width=8,
            height=8,
            faces_blurred=0,
            heads_blurred=0,
            sha256=hashlib.sha256(raw.tobytes()).hexdigest(),
            token=object(),
        )
    safe = gate.release(np.full((64, 64, 3), 128, np.uint8), np.zeros((0, 4)), ImagePurpose.SAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        safe.data = b"raw"  # type: ignore[misc]
    with pytest.raises(ValueError, match="InitVar 'token' must be specified"):
        dataclasses.replace(safe, data=raw.tobytes())


def test_gate_refuses_what_is_not_a_bgr_image(gate: PrivacyGate) -> None:
    with pytest.raises(PrivacyError, match="H x W x 3 uint8"):
        gate.release(np.zeros((10, 10), np.uint8), np.zeros((0, 4)), ImagePurpose.SAMPLE)
    with pytest.raises(PrivacyError, match="RETAIL_CV_PRIVACY_FACE_MODEL"):
        PrivacyGate.open(PrivacySettings(face_model=None))


def _scene(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(40, 200, (270, 480, 3), dtype=np.uint8)


def test_heatmap_background_drops_passers_by_and_hides_who_lingers() -> None:
    rng = np.random.default_rng(3)
    scene = _scene(rng)
    bg = HeatmapBackground(interval_s=1.0, max_samples=8, max_side=480)
    stayer = (300, 60, 340, 200)  # x1, y1, x2, y2: the same place in every frame
    for i in range(20):
        frame = scene.copy()
        x = 20 + 20 * i  # a passer-by moving right 20 px per second
        frame[80:220, x : x + 30] = 255
        frame[stayer[1] : stayer[3], stayer[0] : stayer[2]] = 0
        boxes = [[x, 80, x + 30, 220], list(stayer)]
        bg.add(frame, boxes, t_s=float(i))
    assert 2 <= len(bg) <= 8  # thinned to stay bounded
    median, lingered = bg.median()
    passer = np.ones(median.shape[:2], bool)
    passer[:, stayer[0] : stayer[2]] = False
    np.testing.assert_array_equal(median[passer], scene[passer])  # the passer-by vanished
    assert lingered[stayer[1] : stayer[3], stayer[0] : stayer[2]].all()
    assert lingered.sum() == (stayer[2] - stayer[0]) * (stayer[3] - stayer[1])


def test_released_heatmap_hides_the_lingering_person(gate: PrivacyGate) -> None:
    rng = np.random.default_rng(4)
    scene = _scene(rng)
    bg = HeatmapBackground(interval_s=1.0, max_side=480)
    for i in range(5):
        frame = scene.copy()
        frame[60:200, 300:340] = rng.integers(0, 256, (140, 40, 3), dtype=np.uint8)
        bg.add(frame, [[300, 60, 340, 200]], t_s=float(i))
    counts = np.zeros((9, 16))
    counts[6, 2] = 10.0  # away from the person
    safe = gate.release_heatmap(counts, bg, max_bytes=2_000_000)
    assert safe.purpose is ImagePurpose.HEATMAP and safe.media_type == "image/png"
    assert safe.heads_blurred == 1  # one lingering region
    out = _decode(safe)
    person = (slice(70, 190), slice(305, 335))
    median, _ = bg.median()
    assert _detail(out[person]) < 0.2 * _detail(median[person])
    free = (slice(0, 40), slice(0, 100))  # no person, no heat: the scene itself
    np.testing.assert_array_equal(out[free], scene[free])


def test_outbox_sink_syncs_alert_snapshots_only_and_only_gated(
    gate: PrivacyGate, assets: Path, tmp_path: Path
) -> None:
    image = cv2.imread(str(assets / "images/astronaut.png"))
    appended: list[int] = []
    with Outbox.open(tmp_path / "o.sqlite3", "box-1", "s1", reserve_bytes=0) as ob:
        sink = OutboxImageSink(ob, on_append=lambda: appended.append(1))
        sample = gate.release(image, np.zeros((0, 4)), ImagePurpose.SAMPLE)
        assert sink.put(sample, store_id="s1", camera_id="c1", time=5.0) is None
        with pytest.raises(PrivacyError, match="only SafeImage"):
            sink.put(image, store_id="s1", camera_id="c1", time=5.0)  # type: ignore[arg-type]
        assert ob.stats(10.0).pending_count == 0 and appended == []

        alert = gate.release(image, np.zeros((0, 4)), ImagePurpose.ALERT_SNAPSHOT)
        record = sink.put(alert, store_id="s1", camera_id="c1", time=5.0, alert_rule="crowd")
        assert record is not None and record.file.startswith("outbox:")
        (pending,) = ob.pending(10, 2**30)
        assert pending.kind == "snapshot" and appended == [1]
        snap = parse_record_body(pending)
        assert isinstance(snap, Snapshot)
        assert snap.image_bytes() == alert.data and snap.alert_rule == "crowd"
        assert snap.faces_blurred == alert.faces_blurred >= 1
