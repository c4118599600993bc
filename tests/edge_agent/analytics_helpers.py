"""Builders shared by the analytics tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge_agent.track.tracks import Tracks

W, H = 1000, 1000  # frame size the helpers draw into, pixels


def tracks_at(ids: list[int], feet: npt.ArrayLike, hits: list[int]) -> Tracks:
    """Tracks whose foot points are the given normalised points (frame W x H)."""
    px = np.asarray(feet, np.float64).reshape(-1, 2) * [W, H]
    xyxy = np.column_stack([px[:, 0] - 10, px[:, 1] - 60, px[:, 0] + 10, px[:, 1]])
    n = len(ids)
    return Tracks(
        xyxy.astype(np.float32),
        np.full(n, 0.9, np.float32),
        np.zeros(n, np.int32),
        np.asarray(ids, np.int64),
        np.asarray(hits, np.int32),
    )
