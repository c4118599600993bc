"""Train/val split by scene: all images of one scene land on the same side.

Frames of one video (or photos of one scene) are near-copies of each other; with some on each
side, validation would score memorised views, not generalisation. So the split assigns whole
groups. The scene key of an image:

- a frame extracted by ``retail-export dataset frames``: its source video (``frames.jsonl``),
  as is any other image in a folder that holds a video's frames;
- any other image (a still photo): its folder relative to the images folder, so photos of
  one shelf or one shoot belong in one folder (images directly in the images folder form one
  scene, ``.``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from model_export.dataset.errors import DatasetError
from model_export.dataset.frames import FrameRecord

#: Fraction of images (by count) aimed for in the val split.
DEFAULT_VAL_FRACTION = 0.2


def scene_keys(images: Iterable[str], frames: Mapping[str, FrameRecord]) -> dict[str, str]:
    """The scene of each image (paths relative to the images folder, '/' separated).

    An extracted frame's scene is its video. Any other image's scene is its folder, unless
    that folder holds frames of a video (say a frame left over from an interrupted
    extraction): then it is that video, so a stray frame can never cross the split.
    """
    folder_video = {
        PurePosixPath(image).parent.as_posix(): f"video:{record.video}"
        for image, record in frames.items()
    }
    out: dict[str, str] = {}
    for image in images:
        record = frames.get(image)
        folder = PurePosixPath(image).parent.as_posix()
        if record is not None:
            out[image] = f"video:{record.video}"
        else:
            out[image] = folder_video.get(folder, f"folder:{folder}")
    return out


@dataclass(frozen=True, slots=True)
class GroupSplit:
    """Which groups (scenes) go to train and which to val; the two sets are disjoint."""

    train: frozenset[str]
    val: frozenset[str]

    def side(self, group: str) -> Literal["train", "val"]:
        """``"train"`` or ``"val"`` for a group of this split."""
        if group in self.val:
            return "val"
        if group in self.train:
            return "train"
        raise KeyError(group)


def _order(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\0{group}".encode()).hexdigest()


def split_groups(
    sizes: Mapping[str, int], val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
) -> GroupSplit:
    """Assign whole groups to val so that val holds about ``val_fraction`` of the items.

    ``sizes`` maps each group to its item count (> 0). Groups are visited in an order fixed
    by ``seed`` (a hash, so the same inputs always give the same split); a group goes to val
    when that brings the val count closer to the target. The val count then ends within half
    the largest group of the target. Both sides are non-empty: if no group was small enough
    for val, the smallest group goes there.

    Raises ``DatasetError`` with fewer than two groups (no split can keep them apart) or a
    fraction outside (0, 1).
    """
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val fraction must be between 0 and 1, got {val_fraction!r}")
    bad = sorted(g for g, n in sizes.items() if n <= 0)
    if bad:
        raise DatasetError(f"groups without items: {bad}")
    if len(sizes) < 2:
        raise DatasetError(
            f"a train/val split needs images from at least 2 videos or scenes, got {len(sizes)} "
            f"({', '.join(sizes) or 'none'}): frames of one video are never split across "
            "train and val"
        )
    target = val_fraction * sum(sizes.values())
    val: set[str] = set()
    count = 0
    for group in sorted(sizes, key=lambda g: _order(g, seed)):
        n = sizes[group]
        if abs(count + n - target) < abs(count - target):
            val.add(group)
            count += n
    if not val:
        val.add(min(sizes, key=lambda g: (sizes[g], _order(g, seed))))
    train = frozenset(sizes) - val
    if not train:  # only with a large val fraction (e.g. 0.9 of two equal groups)
        smallest = min(val, key=lambda g: (sizes[g], _order(g, seed)))
        val.discard(smallest)
        train = frozenset({smallest})
    return GroupSplit(train=train, val=frozenset(val))
