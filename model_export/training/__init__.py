"""Detector fine-tuning through ultralytics and its evaluation report (mAP50, mAP50-95).

``train_detector`` trains on a YOLO dataset written by ``model_export.dataset`` and scores the
best weights on the val split; ``evaluate_detector`` scores any weights on a split. The command
line is ``retail-export yolo train|eval``. The product classifier's head training and top-1
report are ``retail-export classifier train|eval`` (``model_export.classifier``).
"""

from model_export.training.detector import (
    TrainResult,
    TrainSettings,
    evaluate_detector,
    train_detector,
)
from model_export.training.errors import TrainingError
from model_export.training.report import ClassMetrics, DetectorReport

__all__ = [
    "ClassMetrics",
    "DetectorReport",
    "TrainResult",
    "TrainSettings",
    "TrainingError",
    "evaluate_detector",
    "train_detector",
]
