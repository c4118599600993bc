"""The frame value that crosses from camera sources to the detector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded camera frame.

    Attributes:
        camera_id: the configured camera id.
        image: BGR uint8 array, shape (height, width, 3).
        index: the frame's index in its source (0-based, counting every decoded frame).
        media_time_s: position in the source in seconds (file media time, or seconds since the
            reader started for live sources).
        captured_at: wall-clock UNIX time in seconds when the frame was decoded.
    """

    camera_id: str
    image: npt.NDArray[np.uint8]
    index: int
    media_time_s: float
    captured_at: float

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.image.shape[0])
