"""MOTChallenge text files: read detections / ground truth, write tracker output.

One row per box: ``frame, id, x, y, w, h, conf, a, b, c`` with frames numbered from 1 and boxes
as top-left corner plus size in pixels. The last columns differ between files:

- ``det/det.txt``: ``frame, -1, x, y, w, h, score`` (7 columns in MOT17, 10 with ``-1`` padding).
- ``gt/gt.txt`` (MOT16/17): ``frame, id, x, y, w, h, considered, class, visibility``; pedestrians
  are class 1 and only rows with ``considered == 1`` are scored.
- tracker output and MOT15 files: ``frame, id, x, y, w, h, conf, -1, -1, -1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_agent.detect.detections import Detections
from edge_agent.track.tracks import Tracks

PEDESTRIAN = 1


@dataclass(frozen=True, slots=True)
class MotRows:
    """Rows of a MOTChallenge file as parallel arrays.

    Attributes:
        frame: int64 (N,) frame number, 1-based.
        track_id: int64 (N,) identity, -1 for detections.
        xywh: float32 (N, 4) top-left x, y, width, height in pixels.
        confidence: float32 (N,) detection score; the "considered" flag (0/1) in MOT16/17 gt.
        class_id: int32 (N,) column 8 (object class in MOT16/17 gt), -1 when absent.
        visibility: float32 (N,) column 9 (visible fraction in MOT16/17 gt), -1 when absent.
    """

    frame: npt.NDArray[np.int64]
    track_id: npt.NDArray[np.int64]
    xywh: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]
    visibility: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def xyxy(self) -> npt.NDArray[np.float32]:
        """Box corners (N, 4) in pixels."""
        return np.concatenate([self.xywh[:, :2], self.xywh[:, :2] + self.xywh[:, 2:]], axis=1)

    def select(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> MotRows:
        """The subset picked by a boolean mask or an index array."""
        return MotRows(
            self.frame[mask],
            self.track_id[mask],
            self.xywh[mask],
            self.confidence[mask],
            self.class_id[mask],
            self.visibility[mask],
        )

    def pedestrians(self) -> MotRows:
        """MOT16/17 ground truth restricted to what is scored: considered pedestrians."""
        return self.select((self.confidence == 1) & (self.class_id == PEDESTRIAN))

    @classmethod
    def from_tracks(cls, frame: int, tracks: Tracks) -> MotRows:
        """Tracker output for one frame (1-based ``frame``) as rows."""
        n = len(tracks)
        xyxy = tracks.xyxy.astype(np.float32)
        return cls(
            np.full(n, frame, np.int64),
            tracks.track_id.astype(np.int64),
            np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1),
            tracks.confidence.astype(np.float32),
            np.full(n, -1, np.int32),
            np.full(n, -1, np.float32),
        )

    @classmethod
    def concat(cls, parts: list[MotRows]) -> MotRows:
        """All rows of ``parts``, in order."""
        if not parts:
            return read_mot_text("")
        return cls(
            np.concatenate([p.frame for p in parts]),
            np.concatenate([p.track_id for p in parts]),
            np.concatenate([p.xywh for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.visibility for p in parts]),
        )

    def frames(self, first: int, last: int) -> Iterator[tuple[int, Detections]]:
        """Every frame number from ``first`` to ``last`` inclusive with its rows as detections
        (empty where a frame has none), whatever the row order in the file."""
        order = np.argsort(self.frame, kind="stable")
        frame = self.frame[order]
        xyxy = self.xyxy[order]
        conf = self.confidence[order]
        starts = np.searchsorted(frame, np.arange(first, last + 2))
        for k, number in enumerate(range(first, last + 1)):
            a, b = starts[k], starts[k + 1]
            yield number, Detections.from_arrays(xyxy[a:b], conf[a:b])


def read_mot_text(text: str) -> MotRows:
    """Parse MOTChallenge rows (6 to 10 comma-separated columns) from a string."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        data = np.zeros((0, 10))
    else:
        rows = [ln.split(",") for ln in lines]
        width = len(rows[0])
        bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
        if width < 6 or width > 10 or bad is not None:
            line_no = 1 if bad is None else bad + 1
            raise ValueError(
                f"line {line_no}: expected 6 to 10 comma-separated columns, the same on every "
                f"line; got {len(rows[line_no - 1])}"
            )
        data = np.full((len(rows), 10), -1.0)
        try:
            data[:, :width] = np.asarray(rows, dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"non-numeric value in MOT rows: {exc}") from exc
    return MotRows(
        data[:, 0].astype(np.int64),
        data[:, 1].astype(np.int64),
        data[:, 2:6].astype(np.float32),
        data[:, 6].astype(np.float32),
        data[:, 7].astype(np.int32),
        data[:, 8].astype(np.float32),
    )


def read_mot(path: str | Path) -> MotRows:
    """Read a MOTChallenge ``det.txt``, ``gt.txt`` or tracker output file.

    Raises:
        ValueError: a line has a different number of columns or a non-numeric field; the
            message names the file.
    """
    p = Path(path)
    try:
        return read_mot_text(p.read_text())
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from exc


def write_mot(path: str | Path, rows: MotRows) -> None:
    """Write rows as ``frame, id, x, y, w, h, conf, -1, -1, -1`` sorted by frame then id."""
    order = np.lexsort((rows.track_id, rows.frame))
    lines = [
        f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.4g},-1,-1,-1\n"
        for f, i, (x, y, w, h), c in zip(
            rows.frame[order].tolist(),
            rows.track_id[order].tolist(),
            rows.xywh[order].tolist(),
            rows.confidence[order].tolist(),
            strict=True,
        )
    ]
    Path(path).write_text("".join(lines))
