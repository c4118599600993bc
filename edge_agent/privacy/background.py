"""A people-free background for heatmaps: the median of frames sampled over the run.

Why a median and not one anonymised frame: in any one frame every shopper is there, body,
clothes and all, and only their heads would be hidden. A per-pixel median over frames taken
seconds apart keeps what is there most of the time, the store, and drops whoever walks
through. Someone who stays in place for most of the samples (a cashier, a seated person)
survives the median, so every pixel that lay inside a person box in at least
``linger_share`` of the samples is hidden as well, and the gate still runs face detection over
the result. With a single sample everyone "lingers" and every person box is hidden.

Samples are downscaled to ``max_side`` and at most ``max_samples`` are kept (when full, every
other one is dropped and the sampling interval doubles), so memory stays bounded for any run
length. Frames stay in memory here; they leave only through ``PrivacyGate.release_heatmap``.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.privacy.regions import clip_boxes, resize_u8


class HeatmapBackground:
    """Frames of one camera sampled every ``interval_s`` media seconds, with their people."""

    def __init__(
        self,
        interval_s: float = 1.0,
        max_samples: int = 24,
        max_side: int = 640,
        linger_share: float = 0.3,
    ) -> None:
        if interval_s <= 0 or max_samples < 2 or not 0 < linger_share <= 1:
            raise ValueError(
                "HeatmapBackground needs interval_s > 0, max_samples >= 2 and "
                f"0 < linger_share <= 1 (got {interval_s}, {max_samples}, {linger_share})"
            )
        self.interval_s = interval_s
        self.max_samples = max_samples
        self.max_side = max_side
        self.linger_share = linger_share
        self._frames: list[npt.NDArray[np.uint8]] = []
        self._people: list[npt.NDArray[np.bool_]] = []
        self._next_t: float | None = None

    def __len__(self) -> int:
        return len(self._frames)

    def due(self, t_s: float) -> bool:
        """Whether a frame at media time ``t_s`` (s) would be sampled."""
        return self._next_t is None or t_s >= self._next_t

    def add(self, image_bgr: npt.NDArray[np.uint8], person_xyxy: npt.ArrayLike, t_s: float) -> bool:
        """Sample this frame if one is due at ``t_s`` (s); person boxes in its pixels.

        Returns whether it was taken.
        """
        if not self.due(t_s):
            return False
        h, w = image_bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if self._frames and self._frames[0].shape[:2] != (size[1], size[0]):
            raise ValueError(
                f"frame size changed from {self._frames[0].shape[1::-1]} to {size} mid-run"
            )
        small = resize_u8(image_bgr, size, cv2.INTER_AREA)
        boxes = clip_boxes(np.asarray(person_xyxy, np.float32).reshape(-1, 4) * scale, *size)
        occupied = np.zeros((size[1], size[0]), np.bool_)
        for x1, y1, x2, y2 in boxes.tolist():
            occupied[y1:y2, x1:x2] = True
        self._frames.append(small)
        self._people.append(occupied)
        if len(self._frames) > self.max_samples:
            self._frames = self._frames[::2]
            self._people = self._people[::2]
            self.interval_s *= 2
        self._next_t = t_s + self.interval_s
        return True

    def median(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
        """The per-pixel median frame and the mask of pixels people lingered on.

        Raises:
            ValueError: no frame was sampled.
        """
        if not self._frames:
            raise ValueError("no frame was sampled for the heatmap background")
        stack = np.stack(self._frames)
        median = np.median(stack, axis=0).round().astype(np.uint8)
        share = np.mean(np.stack(self._people), axis=0)
        return median, share >= self.linger_share
