"""Fit a frame into a model's input tensor, and map boxes back to the frame."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from common.manifest import InputSpec, Letterbox


@dataclass(frozen=True, slots=True)
class InputTransform:
    """How frame pixels map to model-input pixels: ``input = frame * scale + pad``.

    Attributes:
        scale_x, scale_y: input pixels per frame pixel.
        pad_x, pad_y: offset of the frame's top-left corner in the input, in input pixels.
        frame_w, frame_h: size of the original frame in pixels (for clipping).
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_w: int
    frame_h: int

    def to_frame(self, xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map (N, 4) boxes from input pixels to frame pixels, clipped to the frame."""
        out = np.empty_like(xyxy)
        out[:, 0::2] = (xyxy[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (xyxy[:, 1::2] - self.pad_y) / self.scale_y
        np.clip(out[:, 0::2], 0, self.frame_w, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, self.frame_h, out=out[:, 1::2])
        return out


def fit_transform(frame_w: int, frame_h: int, spec: InputSpec) -> InputTransform:
    """The transform that fits a ``frame_w`` × ``frame_h`` frame into ``spec``'s input."""
    if spec.letterbox is Letterbox.STRETCH:
        return InputTransform(
            spec.width / frame_w, spec.height / frame_h, 0.0, 0.0, frame_w, frame_h
        )
    r = min(spec.width / frame_w, spec.height / frame_h)
    new_w, new_h = round(frame_w * r), round(frame_h * r)
    if spec.letterbox is Letterbox.TOP_LEFT:
        pad_x, pad_y = 0, 0
    else:
        pad_x, pad_y = (spec.width - new_w) // 2, (spec.height - new_h) // 2
    return InputTransform(new_w / frame_w, new_h / frame_h, pad_x, pad_y, frame_w, frame_h)


def preprocess_into(
    image: npt.NDArray[np.uint8], spec: InputSpec, out: npt.NDArray[np.float32]
) -> InputTransform:
    """Letterbox/resize a BGR frame and write the model tensor into ``out`` (3, H, W) float32.

    Returns the transform needed to map detections back to the frame.
    """
    frame_h, frame_w = image.shape[:2]
    t = fit_transform(frame_w, frame_h, spec)
    new_w, new_h = round(frame_w * t.scale_x), round(frame_h * t.scale_y)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    px, py = int(t.pad_x), int(t.pad_y)
    # Per channel, (pixel * scale - mean) / std == pixel * gain - offset, written straight into
    # the contiguous CHW planes of ``out``: no intermediate float HWC image, no transpose.
    gain = [spec.scale / sd for sd in spec.std]
    offset = [m / sd for m, sd in zip(spec.mean, spec.std, strict=True)]
    pad = [spec.pad_value * g - o for g, o in zip(gain, offset, strict=True)]
    planes = cv2.split(resized)  # B, G, R
    if spec.color == "rgb":
        planes = planes[::-1]
    for c in range(3):
        plane = out[c]
        if (new_w, new_h) != (spec.width, spec.height):
            plane.fill(pad[c])
        region = plane[py : py + new_h, px : px + new_w]
        np.multiply(planes[c], np.float32(gain[c]), out=region, casting="unsafe")
        if offset[c]:
            region -= np.float32(offset[c])
    return t
