"""Footfall: in/out counts of tracks crossing counting lines.

A crossing is a change of *committed side*. A track commits to a side of a line when its foot
is at least ``hysteresis`` (normalised) from the line on that side; being nearer than that
changes nothing, so jitter on the line is never a crossing. The foot must also stay past the
band for ``confirm_frames`` consecutive frames before it commits to the other side, so a
one-frame box glitch (a detector stretching a box downwards for one frame) is not a crossing
either; the crossing then counts at the time of the first of those frames. A track's first
side commits at once (it has nothing to flip from). A move from one committed side to
the other counts only if the foot path last crossed the line *within the segment* (the crossing
point of the frame-to-frame step is between the end points): walking around the end of a line
does not count. Each track counts at most once per direction per line.

Tracks matched in fewer than ``min_hits`` frames are followed but not counted; a crossing they
made is counted when they reach ``min_hits`` (at the crossing's own time), and never if they
do not (a ghost detection).

Consequence of counting once per direction: a person who goes in, out and in again under the
same track id is counted in once (a person dithering in a doorway is not counted many times),
so ``in - out`` for a closed area undercounts such re-entries.

Known limit: an identity switch while the person is inside the hysteresis band loses the
crossing (the new track has no committed side yet); a switch anywhere else is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge_agent.analytics.config import LineConfig
from edge_agent.analytics.geometry import F64, segment_param, signed_distances
from edge_agent.analytics.trackrows import TrackRows

log = logging.getLogger(__name__)

IN, OUT = 0, 1
_DIRECTION: tuple[Literal["in"], Literal["out"]] = ("in", "out")


@dataclass(frozen=True, slots=True)
class LineCrossing:
    """One counted crossing. ``t_s`` is media time (s) of the frame that completed it."""

    line_id: str
    track_id: int
    direction: Literal["in", "out"]
    t_s: float


class LineCounter:
    """Counts in/out crossings of every line of one camera, vectorised over tracks and lines."""

    def __init__(self, lines: Sequence[LineConfig], min_hits: int = 3) -> None:
        self.line_ids = [ln.id for ln in lines]
        self.min_hits = min_hits
        n = len(lines)
        self._starts = np.array([ln.points[0] for ln in lines], np.float64).reshape(n, 2)
        self._ends = np.array([ln.points[1] for ln in lines], np.float64).reshape(n, 2)
        self._inside_sign = np.array([np.sign(ln.inside_distance) for ln in lines], np.float64)
        self._hyst = np.array([ln.hysteresis for ln in lines], np.float64)
        self._confirm = np.array([ln.confirm_frames for ln in lines], np.int16)
        self._counts = np.zeros((n, 2), np.int64)
        self._rows = TrackRows(
            {
                "feet": ((2,), np.float64, np.nan),  # last foot point seen
                "dist": ((n,), np.float64, np.nan),  # last signed distance per line
                "side": ((n,), np.int8, 0),  # committed side: +1 inside, -1 outside, 0 none yet
                "cand": ((n,), np.int8, 0),  # side the feet are past now, not yet committed
                "cand_n": ((n,), np.int16, 0),  # consecutive frames on the candidate side
                "cand_t": ((n,), np.float64, np.nan),  # time of the first of those frames
                "flip_ok": ((n,), np.bool_, False),  # last sign change was within the segment
                "counted": ((n, 2), np.bool_, False),
                "pending": ((n, 2), np.float64, np.nan),  # crossing time, awaiting min_hits
                "last_seen": ((), np.float64, np.nan),
            }
        )

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        """(L, 2) totals so far: column 0 = in, column 1 = out, rows in config order."""
        return self._counts.copy()

    def totals(self) -> dict[str, tuple[int, int]]:
        """{line id: (in, out)} so far."""
        return {
            lid: (int(c[IN]), int(c[OUT]))
            for lid, c in zip(self.line_ids, self._counts, strict=True)
        }

    def update(
        self,
        track_ids: npt.NDArray[np.int64],
        feet: F64,
        hits: npt.NDArray[np.int32],
        t_s: float,
    ) -> list[LineCrossing]:
        """Advance every line by one frame.

        Args:
            track_ids: (N,) unique ids of the tracks in this frame.
            feet: (N, 2) normalised foot points.
            hits: (N,) frames each track has been matched in so far.
            t_s: media time of the frame, seconds.

        Returns:
            Crossings counted at this frame, earliest first.
        """
        if len(self.line_ids) == 0 or len(track_ids) == 0:
            return []
        tab = self._rows
        rows = tab.rows(track_ids)
        dist = signed_distances(feet, self._starts, self._ends, self._inside_sign)  # (N, L)
        prev = tab.col("dist")[rows]
        flip = ~np.isnan(prev) & ((dist > 0) != (prev > 0))
        flip_ok = tab.col("flip_ok")[rows]
        if flip.any():
            # Where the step from the previous foot point to this one meets the line.
            prev_feet = tab.col("feet")[rows]  # (N, 2)
            frac = np.where(flip, prev / np.where(flip, prev - dist, 1.0), 0.0)
            at = prev_feet[:, None, :] + frac[..., None] * (feet - prev_feet)[:, None, :]
            u = segment_param(at, self._starts, self._ends)
            flip_ok = np.where(flip, (u >= 0.0) & (u <= 1.0), flip_ok)
            tab.col("flip_ok")[rows] = flip_ok
        h = self._hyst[None, :]
        now = np.where((dist >= h) & (dist > 0), 1, np.where((dist <= -h) & (dist < 0), -1, 0))
        side = tab.col("side")[rows]
        # A new side commits only after confirm_frames consecutive frames past the band.
        moving = (now != 0) & (now != side)
        cand, cand_n = tab.col("cand")[rows], tab.col("cand_n")[rows]
        cand_t = tab.col("cand_t")[rows]
        same = moving & (cand == now)
        cand_n = np.where(same, cand_n + 1, np.where(moving, 1, 0)).astype(np.int16)
        cand_t = np.where(same, cand_t, np.where(moving, t_s, np.nan))
        # A track's first side commits at once: there is nothing to flip from, and people come
        # into view at the frame's edges, often only a frame before they step over a line.
        commit = moving & ((cand_n >= self._confirm[None, :]) | (side == 0))
        crossed = commit & (side == -now) & flip_ok
        tab.col("side")[rows] = np.where(commit, now, side)
        tab.col("cand")[rows] = np.where(moving & ~commit, now, 0)
        tab.col("cand_n")[rows] = np.where(commit, 0, cand_n)
        tab.col("cand_t")[rows] = np.where(commit, np.nan, cand_t)
        tab.col("dist")[rows] = dist
        tab.col("feet")[rows] = feet
        tab.col("last_seen")[rows] = t_s

        confirmed = np.asarray(hits) >= self.min_hits
        out: list[LineCrossing] = []
        pending = tab.col("pending")
        counted = tab.col("counted")
        # Crossings made before confirmation, released now that the track is confirmed.
        ready = confirmed[:, None, None] & ~np.isnan(pending[rows])
        for i, ln, k in zip(*np.nonzero(ready), strict=True):
            out.append(
                self._count(rows[i], int(track_ids[i]), ln, k, float(pending[rows[i], ln, k]))
            )
        for i, ln in zip(*np.nonzero(crossed), strict=True):
            r, k = rows[i], IN if now[i, ln] > 0 else OUT
            if counted[r, ln, k]:
                continue
            at = float(cand_t[i, ln])
            if confirmed[i]:
                out.append(self._count(r, int(track_ids[i]), ln, k, at))
            elif np.isnan(pending[r, ln, k]):
                pending[r, ln, k] = at
        out.sort(key=lambda c: c.t_s)
        return out

    def _count(self, row: np.intp, track_id: int, line: int, k: int, t_s: float) -> LineCrossing:
        tab = self._rows
        tab.col("counted")[row, line, k] = True
        tab.col("pending")[row, line, k] = np.nan
        self._counts[line, k] += 1
        return LineCrossing(self.line_ids[line], track_id, _DIRECTION[k], t_s)

    def forget(self, before_s: float) -> None:
        """Drop the state of tracks last seen before ``before_s`` (media s); their pending,
        unconfirmed crossings are discarded."""
        last = self._rows.col("last_seen")
        keep = ~(last < before_s)
        if not keep.all():
            dropped = int(np.count_nonzero(~np.isnan(self._rows.col("pending")[~keep])))
            if dropped:
                log.debug("discarding %d crossings of tracks never confirmed", dropped)
            self._rows.keep(keep)
