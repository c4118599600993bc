"""Association maths: pairwise IoU and thresholded optimal assignment."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

IntArray = npt.NDArray[np.intp]


def iou_matrix(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4).

    Boxes are ``x1, y1, x2, y2`` in pixels; degenerate boxes (zero or negative area) have IoU 0
    with everything. Returns (N, M) in [0, 1].
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    # np.maximum rather than np.clip: several times faster on these small arrays.
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    # Degenerate pairs (union 0) get 0; min() guards rounding just above 1.
    return np.minimum(inter / np.where(union > 0, union, np.inf), 1.0)


def linear_assignment(
    cost: npt.NDArray[np.floating], limit: float
) -> tuple[IntArray, IntArray, IntArray]:
    """Optimal one-to-one matching of rows to columns, keeping only pairs with cost < ``limit``.

    Minimises the sum of matched costs where leaving a row or column unmatched costs
    ``limit / 2`` (the same objective as ``lap.lapjv(..., cost_limit=limit)`` used by ByteTrack):
    it is a maximum-weight matching on ``limit - cost``, not a maximum-cardinality one, so two
    poor pairs never displace one good pair. Non-finite costs are never matched.

    Returns ``(matches (K, 2) of [row, col], unmatched_rows, unmatched_cols)``.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.intp), np.arange(n), np.arange(m)
    valid = np.isfinite(cost) & (cost < limit)
    gain = np.where(valid, cost - limit, 0.0)
    rows, cols = linear_sum_assignment(gain)
    keep = valid[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.intp)
    row_free = np.ones(n, bool)
    row_free[matches[:, 0]] = False
    col_free = np.ones(m, bool)
    col_free[matches[:, 1]] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)
