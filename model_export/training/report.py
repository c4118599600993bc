"""Evaluation report of a detector on one split of a YOLO dataset."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ClassMetrics(BaseModel):
    """Average precision of one class on the split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: int = Field(ge=0, description="labelled boxes of this class in the split")
    map50: float = Field(ge=0.0, le=1.0, description="AP at IoU 0.5")
    map50_95: float = Field(ge=0.0, le=1.0, description="AP averaged over IoU 0.5:0.95")


class DetectorReport(BaseModel):
    """Detection metrics (ultralytics val) of one weights file on one split of a dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    weights: str
    data: str = Field(description="the dataset's data.yaml")
    split: str = Field(description="the split scored (val unless asked otherwise)")
    imgsz: int = Field(gt=0, description="inference size in pixels")
    images: int = Field(ge=0, description="images scored")
    instances: int = Field(ge=0, description="labelled boxes in those images")
    classes: list[str]
    map50: float = Field(ge=0.0, le=1.0, description="mAP at IoU 0.5, mean over classes")
    map50_95: float = Field(ge=0.0, le=1.0, description="mAP over IoU 0.5:0.95 (COCO)")
    precision: float = Field(ge=0.0, le=1.0, description="mean precision at the best-F1 score")
    recall: float = Field(ge=0.0, le=1.0, description="mean recall at the best-F1 score")
    per_class: dict[str, ClassMetrics]

    def table(self) -> str:
        """A small text table of the per-class metrics, for a terminal."""
        lines = [f"{'class':<20} {'boxes':>6} {'mAP50':>7} {'mAP50-95':>9}"]
        for name, m in self.per_class.items():
            lines.append(f"{name:<20} {m.instances:>6} {m.map50:>7.3f} {m.map50_95:>9.3f}")
        lines.append(
            f"{'all':<20} {self.instances:>6} {self.map50:>7.3f} {self.map50_95:>9.3f}"
            f"   ({self.images} {self.split} images)"
        )
        return "\n".join(lines)
