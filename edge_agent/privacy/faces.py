"""Face detection for the privacy gate: YuNet through OpenCV's ``cv2.FaceDetectorYN``.

YuNet's finest stride (8 px) misses faces much under ~12 px, which is what a ceiling camera
sees at 480 x 270. Images small enough are therefore searched a second time at twice the size,
and the two passes are merged with NMS.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.errors import ModelError
from edge_agent.privacy.regions import resize_u8

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Faces:
    """Faces found in one image.

    Attributes:
        xyxy: float32 (N, 4) corners in pixels of the image searched.
        score: float32 (N,) YuNet score in [0, 1].
    """

    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.score)


class FaceDetector:
    """YuNet on BGR images of any size (``yunet_n_dynamic.onnx`` or ``yunet_n_640_640.onnx``).

    Not thread-safe on its own: calls are serialised with a lock because OpenCV's detector
    keeps the input size as state.
    """

    def __init__(
        self,
        model: Path,
        score_threshold: float = 0.5,
        nms_iou: float = 0.3,
        upscale_max_side: int = 1280,
    ) -> None:
        if not model.is_file():
            raise ModelError(f"face model {model} does not exist (expected a YuNet .onnx file)")
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(model), "", (320, 320), score_threshold, nms_iou, 5000
            )
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot load face model {model}: {exc}") from None
        self.model = model
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.upscale_max_side = upscale_max_side
        self._lock = threading.Lock()

    def _pass(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, found = self._net.detect(image)
        if found is None:
            return np.zeros((0, 5), np.float32)
        x, y, bw, bh, score = found[:, 0], found[:, 1], found[:, 2], found[:, 3], found[:, 14]
        return np.stack([x, y, x + bw, y + bh, score], axis=1).astype(np.float32)

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> Faces:
        """Faces in a BGR uint8 image; boxes in its pixels, clipped to it."""
        h, w = image_bgr.shape[:2]
        with self._lock:
            found = [self._pass(image_bgr)]
            if 0 < 2 * max(h, w) <= self.upscale_max_side:
                big = resize_u8(image_bgr, (2 * w, 2 * h), cv2.INTER_LINEAR)
                twice = self._pass(big)
                twice[:, :4] /= 2.0
                found.append(twice)
        rows = np.concatenate(found)
        if len(found) > 1 and len(rows) > 1:
            xywh = np.concatenate([rows[:, :2], rows[:, 2:4] - rows[:, :2]], axis=1)
            keep = cv2.dnn.NMSBoxes(xywh.tolist(), rows[:, 4].tolist(), 0.0, self.nms_iou)
            rows = rows[np.asarray(keep, np.intp).reshape(-1)]
        xyxy = rows[:, :4].copy()
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        return Faces(xyxy, rows[:, 4].copy())
