"""Detections: a batch of boxes for one frame as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Detections:
    """Boxes found in one frame.

    Attributes:
        xyxy: float32 (N, 4) corners in pixels of the original frame.
        confidence: float32 (N,) scores in [0, 1].
        class_id: int32 (N,) class index in the model's class list.
    """

    xyxy: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if (
            self.xyxy.shape != (n, 4)
            or self.confidence.shape != (n,)
            or self.class_id.shape != (n,)
        ):
            raise ValueError(
                f"inconsistent detection arrays: xyxy {self.xyxy.shape}, "
                f"confidence {self.confidence.shape}, class_id {self.class_id.shape}"
            )

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32)
        )

    @classmethod
    def from_arrays(
        cls,
        xyxy: npt.ArrayLike,
        confidence: npt.ArrayLike,
        class_id: npt.ArrayLike | None = None,
    ) -> Detections:
        """Build from any array-likes, casting to the canonical dtypes."""
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        conf = np.asarray(confidence, dtype=np.float32).reshape(-1)
        cls_ids = (
            np.zeros(len(boxes), np.int32)
            if class_id is None
            else np.asarray(class_id, dtype=np.int32).reshape(-1)
        )
        return cls(boxes, conf, cls_ids)

    def __len__(self) -> int:
        return len(self.xyxy)

    def select(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Detections:
        """The subset picked by a boolean mask or an index array."""
        return Detections(self.xyxy[mask], self.confidence[mask], self.class_id[mask])

    @property
    def foot_points(self) -> npt.NDArray[np.float32]:
        """Bottom-centre of each box in pixels, shape (N, 2): where a person stands."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1).astype(
            np.float32
        )
