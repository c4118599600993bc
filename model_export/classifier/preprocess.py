"""Image preprocessing for the MobileNet embedding extractor.

The extractor takes NCHW float RGB, ``(x - 128) * 0.0078125``, 224 x 224 pixels. A view keeps
the central square whose side is ``crop`` times the image's shorter side and resizes it to
224 x 224 (area interpolation). Product photos are framed with the package in the middle and
shelf or hand around it; a tight crop (0.55) scored best on val (see ``train``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from model_export.classifier.errors import ClassifierError

INPUT_SIZE = 224
INPUT_MEAN = 128.0
INPUT_SCALE = 0.0078125

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def read_rgb(path: Path) -> U8:
    """Decode an image file to an (H, W, 3) uint8 RGB array."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ClassifierError(f"cannot decode image {path} (missing, unreadable or not an image)")
    rgb: U8 = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), np.uint8)
    return rgb


def center_crop(rgb: U8, crop: float) -> U8:
    """The central square of side ``crop`` x the shorter side (0 < crop <= 1)."""
    if not 0.0 < crop <= 1.0:
        raise ClassifierError(f"crop fraction must be in (0, 1], got {crop}")
    h, w = rgb.shape[:2]
    side = max(1, round(min(h, w) * crop))
    y0, x0 = (h - side) // 2, (w - side) // 2
    return rgb[y0 : y0 + side, x0 : x0 + side]


def to_input(rgb: U8, crop: float) -> F32:
    """One (H, W, 3) uint8 RGB image to the extractor's (3, 224, 224) float32 input."""
    small = cv2.resize(
        center_crop(rgb, crop), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA
    )
    chw = small.transpose(2, 0, 1).astype(np.float32)
    out: F32 = (chw - np.float32(INPUT_MEAN)) * np.float32(INPUT_SCALE)
    return out


def load_batch(images: list[U8], crop: float) -> F32:
    """Decoded RGB images to one (N, 3, 224, 224) float32 batch of ``crop`` views."""
    if not images:
        return np.zeros((0, 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    return np.stack([to_input(rgb, crop) for rgb in images])
