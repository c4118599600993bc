"""Zones: live occupancy, visits and dwell, vectorised over tracks and zones.

A visit starts on the first frame a track's foot is inside the zone and ends once the track
has been out of the zone, or not seen at all, for more than ``exit_grace_s``: a person who
steps out briefly, or whom the detector misses for a moment, stays one visit. The visit ends
at the last time the track was seen inside; the time out of the zone in between is not added.

Dwell is counted the way the heatmap counts person-seconds: each frame stands for the time
since the previous frame, so a visit covers ``(frame before the first inside frame, last
inside frame]``. Against the true continuous time inside this is off by less than one frame
period (the true entry lies in that first interval, the true exit in the one after the last).

A visit shorter than ``min_dwell_s`` is a pass-by, not a visit. A track never matched in
``min_hits`` frames is a ghost: it neither occupies a zone nor makes visits.

Known limit: an identity switch inside a zone (the tracker gives the same person a new id)
ends the old id's visit at its last sighting and starts a new one, so one stay is reported as
two visits (or a visit and a pass-by), each with part of the dwell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge_agent.analytics.config import ZoneConfig
from edge_agent.analytics.geometry import F64, PolygonSet
from edge_agent.analytics.trackrows import TrackRows


@dataclass(frozen=True, slots=True)
class Visit:
    """A finished stay of one track in one zone; times are media seconds."""

    zone_id: str
    zone_kind: Literal["dwell", "queue"]
    track_id: int
    entered_s: float
    exited_s: float
    pass_by: bool  # dwell < min_dwell_s: not a visit
    engaged: bool  # dwell >= engaged_s

    @property
    def dwell_s(self) -> float:
        """Seconds from entry to the last frame seen inside."""
        return self.exited_s - self.entered_s


class ZoneTracker:
    """Occupancy and visits of the people zones (kind dwell or queue) of one camera."""

    def __init__(self, zones: Sequence[ZoneConfig], min_hits: int = 3) -> None:
        people = [z for z in zones if z.kind in ("dwell", "queue")]
        self.zone_ids = [z.id for z in people]
        self.zone_kinds: list[Literal["dwell", "queue"]] = [
            "queue" if z.kind == "queue" else "dwell" for z in people
        ]
        self.min_hits = min_hits
        self._polygons = PolygonSet([np.asarray(z.polygon, np.float64) for z in people])
        self._grace = np.array([z.exit_grace_s for z in people], np.float64)
        self._min_dwell = [z.min_dwell_s for z in people]
        self._engaged = [z.engaged_s for z in people]
        n = len(people)
        self._occupancy = np.zeros(n, np.int64)
        self._rows = TrackRows(
            {
                "in_visit": ((n,), np.bool_, False),
                "entered": ((n,), np.float64, np.nan),
                "last_in": ((n,), np.float64, np.nan),
                "seen_out": ((n,), np.bool_, False),  # last sighting was outside the zone
                "confirmed": ((), np.bool_, False),
                "last_seen": ((), np.float64, np.nan),
            }
        )

    @property
    def occupancy(self) -> npt.NDArray[np.int64]:
        """(Z,) people present per zone after the last update: confirmed tracks in a visit whose
        last sighting was inside (those lost for less than exit_grace_s still count)."""
        return self._occupancy.copy()

    def update(
        self,
        track_ids: npt.NDArray[np.int64],
        feet: F64,
        hits: npt.NDArray[np.int32],
        t_s: float,
        dt_s: float,
    ) -> list[Visit]:
        """Advance every zone by one frame.

        Args:
            track_ids: (N,) unique ids of the tracks in this frame.
            feet: (N, 2) normalised foot points.
            hits: (N,) frames each track has been matched in so far.
            t_s: media time of the frame, seconds.
            dt_s: seconds this frame stands for (since the previous frame, capped).

        Returns:
            Visits (and pass-bys) that ended, earliest end first.
        """
        if not self.zone_ids:
            return []
        tab = self._rows
        if len(track_ids):
            rows = tab.rows(track_ids)
            inside = self._polygons.contains(feet)  # (N, Z)
            in_visit = tab.col("in_visit")[rows]
            starts = inside & ~in_visit
            tab.col("entered")[rows] = np.where(starts, t_s - dt_s, tab.col("entered")[rows])
            tab.col("in_visit")[rows] = in_visit | inside
            tab.col("last_in")[rows] = np.where(inside, t_s, tab.col("last_in")[rows])
            tab.col("seen_out")[rows] = ~inside
            tab.col("confirmed")[rows] |= np.asarray(hits) >= self.min_hits
            tab.col("last_seen")[rows] = t_s
        ended = tab.col("in_visit") & (t_s - tab.col("last_in") > self._grace[None, :])
        visits = self._close(ended)
        present = tab.col("in_visit") & ~tab.col("seen_out") & tab.col("confirmed")[:, None]
        self._occupancy = np.count_nonzero(present, axis=0).astype(np.int64)
        return visits

    def flush(self) -> list[Visit]:
        """End every open visit at its last sighting inside (end of a video)."""
        if not self.zone_ids:
            return []
        visits = self._close(self._rows.col("in_visit").copy())
        self._occupancy[:] = 0
        return visits

    def _close(self, ended: npt.NDArray[np.bool_]) -> list[Visit]:
        if not ended.any():
            return []
        tab = self._rows
        ids, entered, last_in = tab.ids, tab.col("entered"), tab.col("last_in")
        confirmed = tab.col("confirmed")
        out: list[Visit] = []
        for r, z in zip(*np.nonzero(ended), strict=True):
            if not confirmed[r]:
                continue  # a ghost never matched min_hits times: no visit
            dwell = float(last_in[r, z] - entered[r, z])
            out.append(
                Visit(
                    zone_id=self.zone_ids[z],
                    zone_kind=self.zone_kinds[z],
                    track_id=int(ids[r]),
                    entered_s=float(entered[r, z]),
                    exited_s=float(last_in[r, z]),
                    pass_by=dwell < self._min_dwell[z],
                    engaged=dwell >= self._engaged[z],
                )
            )
        tab.col("in_visit")[ended] = False
        tab.col("entered")[ended] = np.nan
        out.sort(key=lambda v: (v.exited_s, v.zone_id, v.track_id))
        return out

    def forget(self, before_s: float) -> None:
        """Drop tracks last seen before ``before_s`` (media s) that have no open visit."""
        last = self._rows.col("last_seen")
        keep = ~(last < before_s) | self._rows.col("in_visit").any(axis=1)
        if not keep.all():
            self._rows.keep(keep)


DwellTracker = ZoneTracker
