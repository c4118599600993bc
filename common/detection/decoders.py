"""Raw model output → candidate boxes in model-input pixels, one decoder per family.

Every decoder returns ``(xyxy, confidence, class_id)`` for one image, already filtered by the
confidence threshold and the class filter, before NMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from common.manifest import DecoderFamily, ModelManifest

Candidates = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int32]]


def _cxcywh_to_xyxy(b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1)


def _best_class(
    scores: npt.NDArray[np.float32], classes: npt.NDArray[np.intp] | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Per row, the best allowed class and its score. ``scores`` is (N, C)."""
    if classes is not None:
        scores = scores[:, classes]
        best = scores.argmax(axis=1)
        return scores[np.arange(len(best)), best], classes[best].astype(np.int32)
    best = scores.argmax(axis=1)
    return scores[np.arange(len(best)), best], best.astype(np.int32)


def decode_yolov8(
    output: npt.NDArray[np.float32], conf: float, classes: npt.NDArray[np.intp] | None
) -> Candidates:
    """Ultralytics YOLOv8/11 head: (4 + C, N), rows cx, cy, w, h then class scores."""
    pred = output.T  # (N, 4 + C)
    score, cls = _best_class(pred[:, 4:], classes)
    keep = score >= conf
    return _cxcywh_to_xyxy(pred[keep, :4]), score[keep], cls[keep]


@lru_cache(maxsize=8)
def _yolox_grid(
    width: int, height: int, strides: tuple[int, ...]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    grids, steps = [], []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(height // s), np.arange(width // s), indexing="ij")
        grids.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        steps.append(np.full((gx.size, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode_yolox(
    output: npt.NDArray[np.float32],
    conf: float,
    classes: npt.NDArray[np.intp] | None,
    width: int,
    height: int,
    strides: Sequence[int],
) -> Candidates:
    """Megvii YOLOX head: (N, 5 + C), rows dx, dy, log w, log h, objectness, class scores.

    Centres are grid cell + offset times the stride; sizes are exp(log size) times the stride.
    """
    grid, step = _yolox_grid(width, height, tuple(strides))
    if len(grid) != len(output):
        raise ValueError(
            f"YOLOX output has {len(output)} rows but strides {tuple(strides)} at "
            f"{width}x{height} give {len(grid)}"
        )
    score, cls = _best_class(output[:, 5:] * output[:, 4:5], classes)
    keep = score >= conf
    rows, g, s = output[keep], grid[keep], step[keep]
    xy = (rows[:, 0:2] + g) * s
    wh = np.exp(rows[:, 2:4]) * s
    return _cxcywh_to_xyxy(np.concatenate([xy, wh], axis=1)), score[keep], cls[keep]


def decode_ssd(
    output: npt.NDArray[np.float32],
    conf: float,
    classes: npt.NDArray[np.intp] | None,
    width: int,
    height: int,
    label_offset: int,
) -> Candidates:
    """DetectionOutput: (K, 7) rows (image, label, conf, x1, y1, x2, y2), coords 0-1."""
    rows = output.reshape(-1, 7)
    cls = (rows[:, 1] - label_offset).astype(np.int32)
    # A negative image id marks the end of the valid rows.
    keep = (rows[:, 0] >= 0) & (rows[:, 2] >= conf) & (cls >= 0)
    if classes is not None:
        keep &= np.isin(cls, classes)
    xyxy = rows[keep, 3:7] * np.array([width, height, width, height], np.float32)
    return xyxy.astype(np.float32), rows[keep, 2].astype(np.float32), cls[keep]


def split_batch(
    manifest: ModelManifest, output: npt.NDArray[np.float32], n_images: int
) -> list[npt.NDArray[np.float32]]:
    """Split a batched raw output into one array per image.

    YOLO heads put the image on axis 0. DetectionOutput keeps every image's rows in one list
    and names the image in column 0, so rows are picked by that id.
    """
    if manifest.family is DecoderFamily.SSD:
        rows = output.reshape(-1, 7)
        return [rows[rows[:, 0] == i] for i in range(n_images)]
    if output.shape[0] != n_images:
        raise ValueError(f"model returned a batch of {output.shape[0]} for {n_images} images")
    return [output[i] for i in range(n_images)]


def decode(
    manifest: ModelManifest,
    output: npt.NDArray[np.float32],
    conf: float,
    classes: npt.NDArray[np.intp] | None,
) -> Candidates:
    """Decode one image's raw output with the decoder the manifest names."""
    spec = manifest.input
    if manifest.family is DecoderFamily.YOLOV8:
        return decode_yolov8(output, conf, classes)
    if manifest.family is DecoderFamily.YOLOX:
        return decode_yolox(output, conf, classes, spec.width, spec.height, manifest.strides)
    return decode_ssd(output, conf, classes, spec.width, spec.height, manifest.label_offset)
