"""Real frames for calibration and evaluation: sampled from videos, or MOTChallenge images.

Calibration and evaluation sample the same videos at interleaved positions (calibration at
``(i + 1/4) / n`` of the video, evaluation at ``(i + 3/4) / n``), so no frame is in both sets.
MOTChallenge sequences bring their ground truth: considered pedestrians (class 1) of
``gt/gt.txt``, as person boxes in pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from model_export.bundle.errors import ExportError

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
Boxes = npt.NDArray[np.float32]

#: Default videos, relative to the shared assets folder (Intel sample videos, CC BY 4.0).
DEFAULT_VIDEOS = (
    "videos/one-by-one-person-detection.mp4",
    "videos/store-aisle-detection.gif",
    "videos/worker-zone-detection.gif",
    "videos/classroom.gif",
)
#: Default labelled sequences (MOT17 is CC BY-NC-SA 3.0: evaluation only).
DEFAULT_MOT = (
    "mot/MOT17-mini/train/MOT17-02-FRCNN",
    "mot/MOT17-mini/train/MOT17-04-FRCNN",
)
_MOT_PEDESTRIAN = 1


@dataclass(frozen=True, slots=True)
class Frame:
    """One BGR image and, when labelled, its person boxes.

    Attributes:
        name: where it came from (``video.mp4#123`` or ``MOT17-02-FRCNN/000001.jpg``).
        image: uint8 (H, W, 3) BGR.
        persons: float32 (N, 4) labelled person boxes xyxy in pixels, or None when unlabelled.
    """

    name: str
    image: Image
    persons: Boxes | None = None


def _frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ExportError(f"cannot open video {path}")
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # some containers do not say: count by skipping through once
            while cap.grab():
                count += 1
        return max(count, 0)
    finally:
        cap.release()


def sample_video(path: Path, n: int, phase: Literal["calibration", "evaluation"]) -> list[Frame]:
    """``n`` frames spread evenly over the video; the two phases never pick the same frame.

    Frames are skipped without decoding (``grab``); only the picked ones are decoded.
    """
    total = _frame_count(path)
    if total < 2 * n:
        raise ExportError(f"{path} has {total} frames: too few for {n} per phase")
    offset = 0.25 if phase == "calibration" else 0.75
    picks = sorted({int((i + offset) * total / n) for i in range(n)})
    wanted = set(picks)
    out: list[Frame] = []
    cap = cv2.VideoCapture(str(path))
    try:
        for index in range(picks[-1] + 1):
            if not cap.grab():
                break
            if index in wanted:
                ok, img = cap.retrieve()
                if ok:
                    out.append(Frame(f"{path.name}#{index}", np.asarray(img, np.uint8)))
    finally:
        cap.release()
    if len(out) < len(picks):
        log.warning("%s: %d of %d sampled frames could be read", path, len(out), len(picks))
    if not out:
        raise ExportError(f"no frame could be decoded from {path}")
    return out


def sample_videos(
    paths: Sequence[Path], n: int, phase: Literal["calibration", "evaluation"]
) -> list[Frame]:
    """``n`` frames in all, shared as evenly as possible between the videos."""
    out: list[Frame] = []
    for k, path in enumerate(paths):
        share = n // len(paths) + (1 if k < n % len(paths) else 0)
        if share:
            out.extend(sample_video(path, share, phase))
    return out


def mot_frames(sequence: Path) -> list[Frame]:
    """Every image of a MOTChallenge sequence that exists, with its considered pedestrians.

    Only the images present are read (MOT17-mini's ``seqinfo.ini`` claims more frames).
    """
    gt_path = sequence / "gt" / "gt.txt"
    images = sorted((sequence / "img1").glob("*.jpg"))
    if not images or not gt_path.is_file():
        raise ExportError(f"{sequence} is not a MOTChallenge sequence with img1/ and gt/gt.txt")
    gt = np.loadtxt(gt_path, delimiter=",", ndmin=2, dtype=np.float64)
    gt = gt[(gt[:, 6] == 1) & (gt[:, 7] == _MOT_PEDESTRIAN)]
    out: list[Frame] = []
    for path in images:
        img = cv2.imread(str(path))
        if img is None:
            raise ExportError(f"cannot read image {path}")
        rows = gt[gt[:, 0] == int(path.stem)]
        xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)
        image = np.asarray(img, np.uint8)
        out.append(Frame(f"{sequence.name}/{path.name}", image, xyxy.astype(np.float32)))
    return out


def resolve_assets(paths: Sequence[str | Path], assets: Path) -> list[Path]:
    """Absolute paths; relative ones are taken under the shared assets folder."""
    out = [Path(p) if Path(p).is_absolute() else assets / p for p in paths]
    missing = [str(p) for p in out if not p.exists()]
    if missing:
        raise ExportError(f"not found: {missing} (set RETAIL_CV_ASSETS or give full paths)")
    return out
