"""RetinaFace (MobileNet-0.25) face detector: the privacy audit's independent second opinion.

Lives under tests/ on purpose: the edge's privacy gate uses YuNet, and must never be able to
use the auditor that checks it. Model: ``models/face/retinaface_mobilenet0.25.onnx`` (biubug6
export), input ``input0`` [1, 3, 640, 640] BGR minus (104, 117, 123); outputs loc [1, 16800, 4],
conf [1, 16800, 2] (softmax), landmarks. SSD priors: min_sizes [[16, 32], [64, 128], [256, 512]]
at steps 8 / 16 / 32, variances 0.1 / 0.2.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

INPUT = 640
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)


def priors(size: int = INPUT) -> npt.NDArray[np.float32]:
    """(16800, 4) anchor boxes (cx, cy, w, h), normalised to the square input."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        n = math.ceil(size / step)
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cx = (xs.ravel() + 0.5) * step / size
        cy = (ys.ravel() + 0.5) * step / size
        for_cell = [
            np.stack([cx, cy, np.full_like(cx, s / size), np.full_like(cx, s / size)], axis=1)
            for s in sizes
        ]
        # Order is cell-major, then anchor size (as the network lays its outputs out).
        out.append(np.stack(for_cell, axis=1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def decode_boxes(
    loc: npt.NDArray[np.float32], anchors: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Regression offsets (N, 4) against anchors (N, 4) -> (N, 4) xyxy, normalised."""
    v0, v1 = VARIANCES
    centre = anchors[:, :2] + loc[:, :2] * v0 * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(loc[:, 2:] * v1)
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def _nms(xyxy: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float) -> list[int]:
    idx = cv2.dnn.NMSBoxes(
        [[float(a), float(b), float(c - a), float(d - b)] for a, b, c, d in xyxy],
        scores.tolist(),
        0.0,
        iou,
    )
    return [int(i) for i in np.asarray(idx).reshape(-1)]


class RetinaFaceAuditor:
    """Finds faces in BGR images of any size; boxes in the image's pixels."""

    def __init__(self, model: Path) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.anchors = priors()

    def _run(self, square: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], ...]:
        blob = (square.astype(np.float32) - MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, _ = self.session.run(None, {"input0": np.ascontiguousarray(blob)})
        return decode_boxes(loc[0], self.anchors) * INPUT, conf[0, :, 1]

    def detect(
        self, image_bgr: npt.NDArray[np.uint8], threshold: float = 0.5, nms_iou: float = 0.4
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Faces scoring at least ``threshold``: (N, 4) xyxy pixels and (N,) scores.

        The image is letterboxed (aspect kept, zero-mean padding) into 640 x 640, so small
        images are enlarged and large ones shrunk.
        """
        h, w = image_bgr.shape[:2]
        scale = INPUT / max(h, w)
        nw, nh = round(w * scale), round(h * scale)
        square = np.empty((INPUT, INPUT, 3), np.uint8)
        square[:] = MEAN_BGR.astype(np.uint8)  # pads to zero after mean subtraction
        square[:nh, :nw] = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        boxes, scores = self._run(square)
        keep = scores >= threshold
        boxes, scores = boxes[keep] / scale, scores[keep]
        if len(boxes) == 0:
            return boxes.reshape(0, 4), scores
        order = _nms(boxes, scores, nms_iou)
        boxes = boxes[order]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        return boxes, scores[order]
