"""Fit a frame into a model's input tensor, and map boxes back to the frame.

Moved to ``common.detection.preprocess`` (the export tooling runs it too); re-exported here for
existing imports.
"""

from common.detection.preprocess import (
    InputTransform,
    fit_transform,
    preprocess_into,
)

__all__ = [
    "InputTransform",
    "fit_transform",
    "preprocess_into",
]
