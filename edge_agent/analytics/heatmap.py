"""Occupancy heatmap: person-seconds per grid cell, and a colour overlay of it on an image."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.analytics.geometry import F64


class HeatmapAccumulator:
    """Person-seconds per cell of a ``grid_w`` x ``grid_h`` grid over the whole frame.

    Each foot point adds the seconds its frame stands for to the cell it falls in; points on or
    past the frame edge go to the edge cell.
    """

    def __init__(self, grid: tuple[int, int]) -> None:
        self.grid_w, self.grid_h = grid
        if self.grid_w < 1 or self.grid_h < 1:
            raise ValueError(f"heatmap grid must be at least 1 x 1 cells, got {grid}")
        self._cells = np.zeros(self.grid_w * self.grid_h, np.float64)

    def add(self, feet: F64, dt_s: float) -> None:
        """Add ``dt_s`` seconds for each normalised foot point (N, 2)."""
        if len(feet) == 0 or dt_s <= 0:
            return
        ix = np.clip((feet[:, 0] * self.grid_w).astype(np.int64), 0, self.grid_w - 1)
        iy = np.clip((feet[:, 1] * self.grid_h).astype(np.int64), 0, self.grid_h - 1)
        self._cells += dt_s * np.bincount(iy * self.grid_w + ix, minlength=self._cells.size)

    @property
    def counts(self) -> F64:
        """(grid_h, grid_w) person-seconds so far, row 0 at the top of the image (a copy)."""
        return self._cells.reshape(self.grid_h, self.grid_w).copy()

    def take(self) -> F64:
        """Return the counts so far and start again from zero."""
        out = self.counts
        self._cells[:] = 0.0
        return out


def overlay_heatmap(
    counts: npt.NDArray[np.floating], background_bgr: npt.NDArray[np.uint8], alpha: float = 0.6
) -> npt.NDArray[np.uint8]:
    """Draw ``counts`` (grid_h, grid_w person-seconds) as a JET colour overlay on a BGR image.

    The grid is stretched over the whole image; cells with no time are left untouched, the rest
    are blended with opacity growing from ``alpha / 4`` to ``alpha`` with their share of the
    busiest cell. Returns a new BGR uint8 image of the background's size. Only the privacy gate
    turns it into a file (``PrivacyGate.release_heatmap``), over a background it made safe.
    """
    if background_bgr.ndim != 3 or background_bgr.shape[2] != 3:
        raise ValueError(f"background must be an H x W x 3 BGR image, got {background_bgr.shape}")
    if counts.ndim != 2:
        raise ValueError(f"counts must be a 2-D grid (rows, columns), got {counts.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    h, w = background_bgr.shape[:2]
    grid = np.nan_to_num(np.asarray(counts, np.float64), nan=0.0).clip(min=0.0)
    peak = grid.max(initial=0.0)
    share = grid / peak if peak > 0 else grid
    # Nearest-neighbour keeps cell edges and leaves empty cells exactly empty.
    share_px = cv2.resize(share.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    colours = cv2.applyColorMap(np.round(share_px * 255).astype(np.uint8), cv2.COLORMAP_JET)
    opacity = np.where(share_px > 0, alpha * (0.25 + 0.75 * share_px), 0.0)[..., None]
    blended = background_bgr * (1.0 - opacity) + colours * opacity
    return np.round(blended).clip(0, 255).astype(np.uint8)
