"""Raw model output → candidate boxes in model-input pixels, one decoder per family.

Moved to ``common.detection.decoders`` (the export tooling runs it too); re-exported here for
existing imports.
"""

from common.detection.decoders import (
    Candidates,
    decode,
    decode_ssd,
    decode_yolov8,
    decode_yolox,
    split_batch,
)

__all__ = [
    "Candidates",
    "decode",
    "decode_ssd",
    "decode_yolov8",
    "decode_yolox",
    "split_batch",
]
