"""Tracks: the tracker's output for one frame as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Tracks:
    """Confirmed tracks visible in one frame.

    Attributes:
        xyxy: float32 (N, 4) box corners in pixels of the frame.
        confidence: float32 (N,) score of the detection matched this frame.
        class_id: int32 (N,) class index.
        track_id: int64 (N,) identity, unique per camera for the lifetime of the tracker.
        hits: int32 (N,) how many frames this track has been matched to a detection so far.
    """

    xyxy: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]
    track_id: npt.NDArray[np.int64]
    hits: npt.NDArray[np.int32]

    @classmethod
    def empty(cls) -> Tracks:
        """No tracks."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.int32),
            np.zeros((0,), np.int64),
            np.zeros((0,), np.int32),
        )

    def __len__(self) -> int:
        return len(self.track_id)

    @property
    def foot_points(self) -> npt.NDArray[np.float32]:
        """Bottom-centre of each box in pixels, shape (N, 2): where a person stands."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1).astype(
            np.float32
        )
