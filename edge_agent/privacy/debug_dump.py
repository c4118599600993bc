"""Raw frame dumping for debugging: the one way a frame may be stored unanonymised.

Off unless constructed with ``enabled=True`` (an explicit engineer's switch, never a config
default), and loud while on: a WARNING when it starts and again every ``warn_every`` frames.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.privacy.errors import PrivacyError

log = logging.getLogger(__name__)


class RawFrameDebugDump:
    """Writes raw BGR frames as PNG files into ``directory``, warning loudly all along."""

    def __init__(self, directory: Path, *, enabled: bool, warn_every: int = 100) -> None:
        if not enabled:
            raise PrivacyError(
                "raw frame dumping stores unblurred faces; it must be switched on explicitly "
                "(enabled=True) and only for debugging"
            )
        if warn_every < 1:
            raise ValueError(f"warn_every must be >= 1, got {warn_every}")
        self.directory = directory
        self.warn_every = warn_every
        self.frames = 0
        directory.mkdir(parents=True, exist_ok=True)
        log.warning(
            "RAW FRAME DEBUG DUMP IS ON: unblurred camera frames with faces are being written "
            "to %s. Turn it off and delete the folder when done.",
            directory,
        )

    def dump(self, image_bgr: npt.NDArray[np.uint8], camera_id: str, index: int) -> Path:
        """Write one raw frame as ``CAMERA-INDEX.png``; returns its path."""
        path = self.directory / f"{camera_id}-{index:08d}.png"
        if not cv2.imwrite(str(path), np.ascontiguousarray(image_bgr)):
            raise PrivacyError(f"OpenCV could not write raw debug frame {path}")
        self.frames += 1
        if self.frames % self.warn_every == 0:
            log.warning(
                "RAW FRAME DEBUG DUMP still on: %d unblurred frames written to %s",
                self.frames,
                self.directory,
            )
        return path
