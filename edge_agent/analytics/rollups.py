"""Per-interval rollups: counters and sample statistics in time buckets aligned to UNIX time.

A bucket covers ``[bucket_start, bucket_start + interval_s)`` in UNIX seconds, where
``bucket_start`` is a whole multiple of ``interval_s``; media time ``t_s`` maps to UNIX time as
``epoch_start_s + t_s``. A bucket exists once a frame fell in it (buckets with no frames, e.g.
while a camera was offline, produce nothing), and then every registered series gets a rollup
for it, zero counts included, so a dashboard shows 0 rather than a gap.

Some facts are known only after their time (a visit ends at its last sighting but is known
``exit_grace_s`` later; a crossing waits for its track to be confirmed), so a bucket is closed
only once media time is ``lateness_s`` past its end. A fact later than that is added to the
oldest open bucket and logged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from common.telemetry import Rollup, RollupKind

log = logging.getLogger(__name__)


def bucket_start(unix_s: float, interval_s: int) -> int:
    """Start of the aligned bucket containing ``unix_s``: a multiple of ``interval_s``."""
    return math.floor(unix_s / interval_s) * interval_s


@dataclass(slots=True)
class _Series:
    target_id: str
    metric: str
    kind: RollupKind
    edges: npt.NDArray[np.float64] | None


@dataclass(slots=True)
class _Bucket:
    count: npt.NDArray[np.int64]
    total: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    hist: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)


class RollupBook:
    """Accumulates registered (target, metric) series per aligned bucket of one camera."""

    def __init__(
        self,
        store_id: str,
        camera_id: str,
        interval_s: int,
        epoch_start_s: float = 0.0,
        lateness_s: float = 0.0,
    ) -> None:
        self.store_id, self.camera_id = store_id, camera_id
        self.interval_s = interval_s
        self.epoch_start_s = epoch_start_s
        self.lateness_s = lateness_s
        self._series: list[_Series] = []
        self._index: dict[tuple[str, str], int] = {}
        self._open: dict[int, _Bucket] = {}
        self._closed_before = -1  # buckets starting before this are closed

    def register(
        self,
        target_id: str,
        metric: str,
        kind: RollupKind,
        histogram_edges: tuple[float, ...] | None = None,
    ) -> int:
        """Declare a series before the first bucket opens; returns its index."""
        if self._open:
            raise RuntimeError("register every series before the first frame")
        key = (target_id, metric)
        if key in self._index:
            raise ValueError(f"series {key} registered twice")
        edges = None if histogram_edges is None else np.asarray(histogram_edges, np.float64)
        self._series.append(_Series(target_id, metric, kind, edges))
        self._index[key] = len(self._series) - 1
        return self._index[key]

    def index(self, target_id: str, metric: str) -> int:
        """Index of a registered series."""
        return self._index[(target_id, metric)]

    def bucket_of(self, t_s: float) -> int:
        """Aligned UNIX bucket start of media time ``t_s``."""
        return bucket_start(self.epoch_start_s + t_s, self.interval_s)

    def touch(self, t_s: float) -> int:
        """Open the bucket of a frame at ``t_s`` if needed; returns its start."""
        b = self.bucket_of(t_s)
        if b not in self._open and b >= self._closed_before:
            n = len(self._series)
            self._open[b] = _Bucket(
                count=np.zeros(n, np.int64),
                total=np.zeros(n, np.float64),
                low=np.full(n, np.inf),
                high=np.full(n, -np.inf),
                hist={
                    i: np.zeros(len(s.edges) + 1, np.int64)
                    for i, s in enumerate(self._series)
                    if s.edges is not None
                },
            )
        return b

    def _bucket_for(self, t_s: float) -> _Bucket:
        b = self.bucket_of(t_s)
        if b in self._open:
            return self._open[b]
        if self._open and b < min(self._open):
            log.info(
                "camera %s: a fact at %.1f s came after its bucket %d closed; adding it to the "
                "oldest open bucket",
                self.camera_id,
                t_s,
                b,
            )
            return self._open[min(self._open)]
        return self._open[self.touch(t_s)]

    def count(self, series: int, t_s: float, n: int = 1) -> None:
        """Add ``n`` events to a counter series at media time ``t_s``."""
        self._bucket_for(t_s).count[series] += n

    def sample(self, series: int, t_s: float, value: float) -> None:
        """Add one sample to a samples series at media time ``t_s``."""
        bk = self._bucket_for(t_s)
        bk.count[series] += 1
        bk.total[series] += value
        bk.low[series] = min(bk.low[series], value)
        bk.high[series] = max(bk.high[series], value)
        edges = self._series[series].edges
        if edges is not None:
            bk.hist[series][int(np.searchsorted(edges, value, side="right"))] += 1

    def sample_many(
        self, series: npt.NDArray[np.intp], t_s: float, values: npt.NDArray[np.float64]
    ) -> None:
        """Add one sample to each of several samples series (no histograms) at ``t_s``."""
        bk = self._bucket_for(t_s)
        bk.count[series] += 1
        bk.total[series] += values
        bk.low[series] = np.minimum(bk.low[series], values)
        bk.high[series] = np.maximum(bk.high[series], values)

    def advance(self, t_s: float) -> list[tuple[int, list[Rollup]]]:
        """Close buckets that ended at least ``lateness_s`` before ``t_s``, oldest first."""
        horizon = self.epoch_start_s + t_s - self.lateness_s
        due = sorted(b for b in self._open if b + self.interval_s <= horizon)
        return [(b, self._close(b)) for b in due]

    def close_all(self) -> list[tuple[int, list[Rollup]]]:
        """Close every open bucket, oldest first (end of a video)."""
        return [(b, self._close(b)) for b in sorted(self._open)]

    def _close(self, b: int) -> list[Rollup]:
        bk = self._open.pop(b)
        self._closed_before = max(self._closed_before, b + self.interval_s)
        out: list[Rollup] = []
        for i, s in enumerate(self._series):
            n = int(bk.count[i])
            base = {
                "store_id": self.store_id,
                "camera_id": self.camera_id,
                "target_id": s.target_id,
                "metric": s.metric,
                "bucket_start": b,
                "interval_s": self.interval_s,
                "kind": s.kind,
                "count": n,
            }
            if s.kind is RollupKind.COUNTER:
                out.append(Rollup.model_validate(base))
            elif n > 0:  # no samples, nothing to say (e.g. no wait estimate yet)
                hist = bk.hist.get(i)
                out.append(
                    Rollup.model_validate(
                        base
                        | {
                            "sum": float(bk.total[i]),
                            "min": float(bk.low[i]),
                            "max": float(bk.high[i]),
                            "histogram_edges": None if s.edges is None else s.edges.tolist(),
                            "histogram": None if hist is None else hist.tolist(),
                        }
                    )
                )
        return out
