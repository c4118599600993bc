"""Vectorised plane geometry in normalised frame coordinates (x right, y down, both 0-1)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge_agent.track.tracks import Tracks

F64 = npt.NDArray[np.float64]


def normalised_feet(tracks: Tracks, frame_w: int, frame_h: int) -> F64:
    """Bottom-centre of each box divided by the frame size: (N, 2) float64, 0-1 inside."""
    if frame_w <= 0 or frame_h <= 0:
        raise ValueError(f"frame size must be positive, got {frame_w} x {frame_h} pixels")
    feet = tracks.foot_points.astype(np.float64)
    feet /= np.array([frame_w, frame_h], np.float64)
    return feet


def signed_distances(points: F64, starts: F64, ends: F64, inside_sign: F64) -> F64:
    """Distance of each point from each line, positive on the line's inside.

    Args:
        points: (N, 2) normalised points.
        starts, ends: (L, 2) end points of L lines.
        inside_sign: (L,) +1 or -1 so that the inside half-plane comes out positive.

    Returns:
        (N, L) perpendicular distances in normalised units.
    """
    d = ends - starts  # (L, 2)
    length = np.hypot(d[:, 0], d[:, 1])
    rel = points[:, None, :] - starts[None, :, :]  # (N, L, 2)
    cross = d[None, :, 0] * rel[..., 1] - d[None, :, 1] * rel[..., 0]
    out: F64 = cross * (inside_sign / length)[None, :]
    return out


def segment_param(points: F64, starts: F64, ends: F64) -> F64:
    """Projection of points onto each line as a fraction of the segment: 0 at start, 1 at end.

    ``points`` is (N, L, 2) (one point per track and line); returns (N, L).
    """
    d = ends - starts
    rel = points - starts[None, :, :]
    out: F64 = (rel * d[None, :, :]).sum(axis=-1) / (d * d).sum(axis=-1)[None, :]
    return out


def points_in_polygon(points: F64, polygon: F64) -> npt.NDArray[np.bool_]:
    """(N,) even-odd point-in-polygon of N normalised points against one polygon (M, 2).

    Points exactly on an edge may land on either side; that is below a pixel's width.
    """
    return PolygonSet([polygon]).contains(points)[:, 0]


def points_in_polygons(points: F64, polygons: list[F64]) -> npt.NDArray[np.bool_]:
    """(N, Z) membership of N points in each of Z polygons (see ``PolygonSet``)."""
    return PolygonSet(polygons).contains(points)


class PolygonSet:
    """Several polygons with their edges laid out once, for one-call point-in-polygon tests.

    Even-odd rule; all polygons' edges are tested in one broadcast and summed per polygon.
    """

    def __init__(self, polygons: list[F64]) -> None:
        self.n = len(polygons)
        if self.n == 0:
            self._x0 = self._y0 = self._y1 = self._inv = np.zeros((1, 0))
            self._starts = np.zeros(0, np.intp)
            return
        p0 = np.concatenate([np.asarray(p, np.float64) for p in polygons])
        p1 = np.concatenate([np.roll(np.asarray(p, np.float64), -1, axis=0) for p in polygons])
        dy = p1[:, 1] - p0[:, 1]
        flat = dy == 0  # horizontal edges never straddle a horizontal ray
        self._x0, self._y0, self._y1 = p0[None, :, 0], p0[None, :, 1], p1[None, :, 1]
        self._inv = np.where(flat, 0.0, (p1[:, 0] - p0[:, 0]) / np.where(flat, 1.0, dy))[None, :]
        self._starts = np.cumsum([0] + [len(p) for p in polygons[:-1]]).astype(np.intp)

    def contains(self, points: F64) -> npt.NDArray[np.bool_]:
        """(N, Z) whether each normalised point is inside each polygon."""
        if self.n == 0 or len(points) == 0:
            return np.zeros((len(points), self.n), bool)
        x, y = points[:, 0:1], points[:, 1:2]
        hits = ((self._y0 > y) != (self._y1 > y)) & (x < self._x0 + (y - self._y0) * self._inv)
        crossings = np.add.reduceat(hits.astype(np.int32), self._starts, axis=1)
        out: npt.NDArray[np.bool_] = (crossings & 1).astype(bool)
        return out
