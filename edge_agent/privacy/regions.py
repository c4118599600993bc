"""Where to hide people and how: face and head regions, and irreversible pixelation.

Pure functions over numpy arrays; all boxes are xyxy in pixels of the image they refer to.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def resize_u8(
    image: npt.NDArray[np.uint8], size: tuple[int, int], interpolation: int
) -> npt.NDArray[np.uint8]:
    """``cv2.resize`` to ``size`` = (width, height) pixels, typed as the uint8 image it is."""
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)


def expand_boxes(xyxy: npt.ArrayLike, share: float) -> F32:
    """Grow each (N, 4) box by ``share`` of its width / height on every side."""
    b = np.asarray(xyxy, np.float32).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    return np.concatenate([b[:, :2] - share * wh, b[:, 2:] + share * wh], axis=1)


def head_regions(
    person_xyxy: npt.ArrayLike,
    height_share: float = 0.25,
    width_share: float = 0.6,
    pad: float = 0.15,
) -> F32:
    """The region where each person's head is: the top of their (N, 4) box, full box width.

    Height is ``height_share`` of the box height but at least ``width_share`` of its width
    (a box cut short by the frame's bottom edge is short for its width, and its head is a larger
    share of it), never more than the box. ``pad`` times the box width is added on the left,
    right and top, for heads that stick out of a tight box.
    """
    b = np.asarray(person_xyxy, np.float32).reshape(-1, 4)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    head_h = np.minimum(np.maximum(height_share * h, width_share * w), h)
    m = pad * w
    return np.stack([b[:, 0] - m, b[:, 1] - m, b[:, 2] + m, b[:, 1] + head_h], axis=1)


def clip_boxes(xyxy: F32, width: int, height: int) -> npt.NDArray[np.int32]:
    """Boxes rounded outwards to whole pixels inside a ``width`` x ``height`` image; empty
    ones dropped. Returns int32 (M, 4)."""
    if len(xyxy) == 0:
        return np.zeros((0, 4), np.int32)
    x1 = np.floor(xyxy[:, 0]).clip(0, width)
    y1 = np.floor(xyxy[:, 1]).clip(0, height)
    x2 = np.ceil(xyxy[:, 2]).clip(0, width)
    y2 = np.ceil(xyxy[:, 3]).clip(0, height)
    out = np.stack([x1, y1, x2, y2], axis=1).astype(np.int32)
    return out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]


def pixelate(patch: npt.NDArray[np.uint8], blocks_across: int) -> npt.NDArray[np.uint8]:
    """Replace a BGR patch by a coarse grid of its mean colours, then blur the grid.

    The shorter side gets ``blocks_across`` cells; each cell keeps only its average colour, so
    every detail smaller than a cell is gone for good, and the blur removes the cell edges that
    a "depixelating" model would otherwise work from.
    """
    h, w = patch.shape[:2]
    cell = max(1, math.ceil(min(h, w) / blocks_across))
    gw, gh = max(1, math.ceil(w / cell)), max(1, math.ceil(h / cell))
    grid = resize_u8(patch, (gw, gh), cv2.INTER_AREA)
    blocky = resize_u8(grid, (w, h), cv2.INTER_NEAREST)
    k = cell | 1  # odd kernel about a cell wide
    return np.asarray(cv2.GaussianBlur(blocky, (k, k), 0), np.uint8)


def anonymise(
    image: npt.NDArray[np.uint8], boxes: npt.NDArray[np.int32], blocks_across: int
) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` with every int (M, 4) xyxy box pixelated (see ``pixelate``)."""
    out = image.copy()
    for x1, y1, x2, y2 in boxes.tolist():
        out[y1:y2, x1:x2] = pixelate(out[y1:y2, x1:x2], blocks_across)
    return out


def anonymise_mask(
    image: npt.NDArray[np.uint8], mask: npt.NDArray[np.bool_], cell_px: int
) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` with the pixels under ``mask`` replaced by a ``cell_px`` pixelation
    (then blurred) of the whole image."""
    if not mask.any():
        return image.copy()
    h, w = image.shape[:2]
    grid = resize_u8(image, (max(1, w // cell_px), max(1, h // cell_px)), cv2.INTER_AREA)
    coarse = resize_u8(grid, (w, h), cv2.INTER_NEAREST)
    coarse = np.asarray(cv2.GaussianBlur(coarse, (cell_px | 1, cell_px | 1), 0), np.uint8)
    return np.where(mask[..., None], coarse, image).astype(np.uint8)
