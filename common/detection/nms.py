"""Class-aware non-maximum suppression over numpy arrays."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """IoU matrix (len(a), len(b)) of xyxy boxes in the same units."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(
    xyxy: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    class_id: npt.NDArray[np.int32],
    iou_threshold: float,
    max_detections: int = 300,
) -> npt.NDArray[np.intp]:
    """Indices of boxes kept by greedy NMS within each class, best score first.

    Boxes of different classes never suppress each other (each class is shifted to its own
    region of the plane). The IoU matrix is computed once; the greedy pass walks only the
    surviving boxes.
    """
    if len(scores) == 0:
        return np.zeros((0,), np.intp)
    order = np.argsort(-scores, kind="stable")[: max(max_detections * 10, 1000)]
    span = float(np.max(xyxy)) + 1.0
    shifted = xyxy[order] + (class_id[order].astype(np.float32) * span)[:, None]
    overlap = box_iou(shifted, shifted) > iou_threshold
    suppressed = np.zeros(len(order), bool)
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_detections:
            break
        suppressed |= overlap[i]
    return order[np.asarray(keep, np.intp)]
