"""Privacy audit: run the whole pipeline on the footage with faces, then let a *different*
face detector (RetinaFace, tests-side only) look at every image that left the gate.

RetinaFace "finds a face" at its usual threshold, 0.5. On the original frames it finds
hundreds (so the audit is not vacuous), and every one must lie inside a region the gate hides.
On the gated images it must find none of them again: no detection >= 0.5 at the place
(IoU >= 0.3) of a face it found on the original. A detection >= 0.5 where the original had no
face cannot be a face that leaked (the gate only removes detail): it is an artefact of the
pixelation (RetinaFace rates some pixelated blocks beside dark clothing up to ~0.6; every
pixelation variant tried gave one somewhere). Those are counted and logged, not failed. The
heatmaps have no single original, so on them nothing may score >= 0.5 at all.

Counts are logged (``pytest -o log_cli=true --log-cli-level=INFO``) and recorded as properties.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge_agent.config import parse_config
from edge_agent.detect.detector import Detector, DetectorSettings
from edge_agent.privacy import (
    ImageExporter,
    ImagePurpose,
    PrivacyGate,
    PrivacySettings,
    read_manifest,
)
from edge_agent.process import process_video
from tests.edge_agent.retinaface_audit import RetinaFaceAuditor

log = logging.getLogger(__name__)

VIDEOS = (
    "face-demographics-walking.gif",
    "face-demographics-walking-and-pause.gif",
    "classroom.gif",
)
AUDIT_THRESHOLD = 0.5  # RetinaFace's usual cut-off: "it finds a face"
SAME_PLACE_IOU = 0.3
COVERED = 0.9  # share of a face box's pixels inside the gate's hidden regions


@pytest.fixture(scope="module")
def auditor(assets: Path) -> RetinaFaceAuditor:
    return RetinaFaceAuditor(assets / "models/face/retinaface_mobilenet0.25.onnx")


@pytest.fixture(scope="module")
def settings(assets: Path) -> PrivacySettings:
    return PrivacySettings(face_model=assets / "models/face/yunet_n_dynamic.onnx")


@pytest.fixture(scope="module")
def people(assets: Path) -> Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]]:
    detector = Detector.open(
        assets / "models/person/yolox_nano.onnx", settings=DetectorSettings(confidence=0.2)
    )
    return lambda img: detector.detect([img])[0].xyxy


def _frames(video: Path) -> list[npt.NDArray[np.uint8]]:
    cap = cv2.VideoCapture(str(video))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def _covered(face: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_]) -> bool:
    h, w = mask.shape
    x1, y1 = max(0, int(face[0])), max(0, int(face[1]))
    x2, y2 = min(w, int(np.ceil(face[2]))), min(h, int(np.ceil(face[3])))
    return x2 > x1 and y2 > y1 and float(mask[y1:y2, x1:x2].mean()) >= COVERED


def _iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(N, M) IoU of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def test_auditor_finds_the_known_faces(
    auditor: RetinaFaceAuditor, assets: Path, ultralytics_images: Path
) -> None:
    # Known faces (assets README; YuNet agrees): one in astronaut.png, two in zidane.jpg.
    boxes, scores = auditor.detect(cv2.imread(str(assets / "images/astronaut.png")))
    assert len(boxes) == 1 and scores[0] > 0.9
    x1, y1, x2, y2 = boxes[0]
    assert 160 < x1 < 200 and 40 < y1 < 80 and 250 < x2 < 290 and 160 < y2 < 200
    boxes, scores = auditor.detect(cv2.imread(str(ultralytics_images / "zidane.jpg")))
    centres = sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes)
    assert len(boxes) == 2 and scores.min() > 0.9
    assert 580 < centres[0][0] < 640 and 320 < centres[0][1] < 370  # the man on the left
    assert 950 < centres[1][0] < 1020 and 160 < centres[1][1] < 210  # Zidane, right


@pytest.mark.slow
def test_no_face_in_anything_that_left_the_gate(
    tmp_path: Path,
    assets: Path,
    ultralytics_images: Path,
    auditor: RetinaFaceAuditor,
    settings: PrivacySettings,
    people: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]],
    record_property: Callable[[str, object], None],
) -> None:
    gate = PrivacyGate.open(settings)
    # (exported image, its original frame or None for heatmaps)
    pairs: list[tuple[Path, npt.NDArray[np.uint8] | None]] = []
    originals: list[npt.NDArray[np.uint8]] = []
    # 1. The whole pipeline on every frame of the face footage, a gated sample of each frame
    #    (plus alert snapshots and the heatmap) exported.
    for name in VIDEOS:
        video = assets / "videos" / name
        config = parse_config(
            {
                "store_id": "audit",
                "device_id": "box-1",
                "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
                "cameras": [
                    {
                        "id": "cam",
                        "source": str(video),
                        "alerts": [
                            {
                                "id": "busy",
                                "metric": "people",
                                "target": "cam",
                                "op": ">=",
                                "threshold": 1,
                            }
                        ],
                    }
                ],
            },
            tmp_path,
        )
        out = tmp_path / name
        report = process_video(
            video, config, all_frames=True, export_dir=out, snapshot_every_s=1e-6, privacy=settings
        )
        frames = _frames(video)
        records = read_manifest(out)
        samples = [r for r in records if r.purpose is ImagePurpose.SAMPLE]
        assert len(samples) == report.frames_processed == len(frames)
        assert {r.purpose for r in records} == {
            ImagePurpose.SAMPLE, ImagePurpose.ALERT_SNAPSHOT, ImagePurpose.HEATMAP,
        }  # fmt: skip
        frame_at = {r.time: frames[i] for i, r in enumerate(samples)}  # one sample per frame
        pairs += [
            (out / r.file, None if r.purpose is ImagePurpose.HEATMAP else frame_at[r.time])
            for r in records
        ]
        originals += frames
    # 2. The sample images straight through the gate, with the person detector's boxes.
    stills = [
        assets / "images/astronaut.png",
        ultralytics_images / "bus.jpg",
        ultralytics_images / "zidane.jpg",
    ]
    exporter = ImageExporter(tmp_path / "stills")
    for path in stills:
        img = cv2.imread(str(path))
        originals.append(img)
        safe = gate.release(img, people(img), ImagePurpose.SAMPLE)
        record = exporter.put(safe, store_id="audit", camera_id=path.stem, time=0.0)
        pairs.append((exporter.directory / record.file, img))

    # 3. The auditor on the originals: it sees faces, and the gate's regions cover each one.
    faces_in: dict[int, npt.NDArray[np.float32]] = {}
    seen = covered = 0
    for img in originals:
        faces, _ = auditor.detect(img, threshold=AUDIT_THRESHOLD)
        faces_in[id(img)] = faces
        regions = gate.find_regions(img, people(img)).all
        mask = np.zeros(img.shape[:2], np.bool_)
        for x1, y1, x2, y2 in np.round(regions).astype(int).clip(min=0).tolist():
            mask[y1:y2, x1:x2] = True
        seen += len(faces)
        covered += sum(_covered(f, mask) for f in faces)
    # 4. The auditor on everything that left the gate.
    leaks: list[str] = []
    artefacts: list[str] = []
    worst = residual = 0.0  # best score anywhere / at the place of an original face
    for path, original in pairs:
        img = cv2.imread(str(path))
        boxes, scores = auditor.detect(img, threshold=0.05)
        worst = max(worst, float(scores.max(initial=0.0)))
        where = f"{path.relative_to(tmp_path)}"
        if original is None:
            leaks += [f"{where}: {s:.2f} (heatmap)" for s in scores if s >= AUDIT_THRESHOLD]
            continue
        scale = original.shape[1] / img.shape[1]
        was_face = (_iou(boxes * scale, faces_in[id(original)]) >= SAME_PLACE_IOU).any(axis=1)
        residual = max(residual, float(scores[was_face].max(initial=0.0)))
        found = scores >= AUDIT_THRESHOLD
        leaks += [f"{where}: {s:.2f}" for s in scores[found & was_face]]
        artefacts += [f"{where}: {s:.2f}" for s in scores[found & ~was_face]]
    summary = (
        f"privacy audit: on {len(originals)} originals RetinaFace finds {seen} faces "
        f"(>= {AUDIT_THRESHOLD}), {covered} of them inside the gate's hidden regions; "
        f"{len(pairs)} images left the gate: {len(leaks)} of those faces found again, best "
        f"score at their places {residual:.3f}; top score anywhere {worst:.3f}; artefacts "
        f">= {AUDIT_THRESHOLD} where the original has no face: {artefacts}"
    )
    log.info(summary)
    record_property("privacy_audit", summary)
    assert leaks == [], f"{len(leaks)} faces found after the gate, e.g. {leaks[:8]}"
    assert seen >= len(originals)  # footage full of faces: the auditor is not blind
    assert covered == seen, summary
