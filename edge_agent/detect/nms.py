"""Class-aware non-maximum suppression over numpy arrays.

Moved to ``common.detection.nms`` (the export tooling runs it too); re-exported here for
existing imports.
"""

from common.detection.nms import (
    box_iou,
    nms,
)

__all__ = [
    "box_iou",
    "nms",
]
