"""Box geometry of shelves in normalised frame coordinates (x right, y down, both 0-1).

Boxes are ``(N, 4)`` arrays of ``[x1, y1, x2, y2]``. Pixel boxes from the detector are divided
by the frame size first (``normalise_boxes``).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.intp]

OUTLINE_GRID = 256  # cells per side of the rasterised shelf outline (area error < 1/256)


def normalise_boxes(xyxy_px: npt.NDArray[np.floating], frame_w: int, frame_h: int) -> F64:
    """Pixel boxes (N, 4) divided by the frame size and clipped to the frame: (N, 4) float64."""
    if frame_w <= 0 or frame_h <= 0:
        raise ValueError(f"frame size must be positive, got {frame_w} x {frame_h} pixels")
    boxes = np.asarray(xyxy_px, np.float64).reshape(-1, 4) / np.array(
        [frame_w, frame_h, frame_w, frame_h], np.float64
    )
    out: F64 = np.clip(boxes, 0.0, 1.0)
    return out


def box_areas(boxes: F64) -> F64:
    """(N,) areas of (N, 4) boxes, in squared normalised units."""
    out: F64 = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    return out


def overlap_of_smaller(a: F64, b: F64) -> F64:
    """(N, M) intersection area of each box of ``a`` with each of ``b``, as a fraction of the
    smaller of the two boxes (1: one box lies inside the other; 0: apart)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    smaller = np.minimum(box_areas(a)[:, None], box_areas(b)[None, :])
    out: F64 = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    return out


def best_match(slots: F64, products: F64, min_overlap: float) -> I64:
    """(S,) index of the product box that fills each slot best, -1 where none reaches
    ``min_overlap`` (``overlap_of_smaller``). A product box may fill more than one slot when it
    covers them all (a box spanning two facings); slots are drawn one product wide."""
    if len(products) == 0:
        return np.full(len(slots), -1, np.intp)
    ov = overlap_of_smaller(slots, products)
    best = ov.argmax(axis=1)
    out: I64 = np.where(ov[np.arange(len(slots)), best] >= min_overlap, best, -1).astype(np.intp)
    return out


class ShelfOutline:
    """A shelf polygon rasterised once, to measure how much of it boxes cover in one call."""

    def __init__(self, polygon: F64, grid: int = OUTLINE_GRID) -> None:
        pts = np.round(np.asarray(polygon, np.float64) * grid).astype(np.int32)
        mask = np.zeros((grid, grid), np.uint8)
        cv2.fillPoly(mask, [pts], 1)
        self.grid = grid
        self._integral = cv2.integral(mask).astype(np.float64)  # (grid + 1, grid + 1)
        self.cells = float(self._integral[-1, -1])
        if self.cells == 0:
            raise ValueError("the shelf polygon covers no area at the outline resolution")

    def covered(self, boxes: F64) -> F64:
        """(N,) fraction of the shelf polygon's area inside each normalised box (0-1)."""
        if len(boxes) == 0:
            return np.zeros(0, np.float64)
        c = np.clip(np.round(boxes * self.grid), 0, self.grid).astype(np.intp)
        x1, y1, x2, y2 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
        ii = self._integral
        inside = ii[y2, x2] - ii[y1, x2] - ii[y2, x1] + ii[y1, x1]
        out: F64 = np.clip(inside, 0, None) / self.cells
        return out
