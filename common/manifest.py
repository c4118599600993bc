"""The model manifest: everything the edge needs to run a model without guessing.

A manifest travels beside the model file (``<model>.manifest.json`` or ``manifest.json`` in the
bundle folder). In a signed bundle (``common.bundle``) it also lists the sha256 of every file
(``files``) and names the one to load (``model_file``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MANIFEST_SCHEMA_VERSION = 1


class DecoderFamily(StrEnum):
    """How a detector's raw output is turned into boxes."""

    YOLOV8 = "yolov8"  # ultralytics YOLOv8/11 export: [B, 4 + classes, N], cxcywh in input pixels
    YOLOX = "yolox"  # Megvii YOLOX: [B, N, 5 + classes], grid-relative, strides 8/16/32
    SSD = "ssd"  # DetectionOutput: [B, 1, K, 7] = (image, label, conf, x1, y1, x2, y2) normalised


class Letterbox(StrEnum):
    """How a frame is fitted into the model input."""

    TOP_LEFT = "top_left"  # keep aspect ratio, image at the top-left, pad right/bottom
    CENTER = "center"  # keep aspect ratio, image centred, pad evenly
    STRETCH = "stretch"  # resize to the input size, aspect ratio not kept


class InputSpec(BaseModel):
    """Model input geometry and pixel preprocessing.

    The tensor fed to the model is ``((pixel * scale) - mean) / std`` per channel, in
    ``color`` channel order, laid out as ``layout``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(gt=0, description="input width in pixels")
    height: int = Field(gt=0, description="input height in pixels")
    layout: Literal["NCHW"] = "NCHW"
    color: Literal["bgr", "rgb"] = "bgr"
    scale: float = Field(1.0, gt=0, description="multiplier applied to 0-255 pixel values")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    letterbox: Letterbox = Letterbox.CENTER
    pad_value: int = Field(114, ge=0, le=255)
    dynamic_batch: bool = False


class ModelManifest(BaseModel):
    """What a model is and how to run it (name, version, task, input, classes, decoder)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = MANIFEST_SCHEMA_VERSION
    name: str
    version: str = "0"
    task: Literal["detect", "classify", "embed"] = "detect"
    family: DecoderFamily
    input: InputSpec
    classes: list[str]
    label_offset: int = Field(
        0, description="raw label minus this is the index into classes (SSD label 1 = class 0)"
    )
    strides: tuple[int, ...] = (8, 16, 32)
    sha256: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime | None = None
    source: str | None = Field(None, description="where the weights came from, and licence")
    model_file: str | None = Field(
        None, description="in a bundle: the file to load (.onnx, or the OpenVINO .xml)"
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="in a bundle: sha256 (hex) of every file but the manifest and its signature",
    )

    @model_validator(mode="after")
    def _classes_not_empty(self) -> ModelManifest:
        if not self.classes:
            raise ValueError("classes must list at least one class name")
        return self

    @model_validator(mode="after")
    def _model_file_listed(self) -> ModelManifest:
        if self.files and (self.model_file is None or self.model_file not in self.files):
            raise ValueError(
                f"model_file {self.model_file!r} must be one of files {list(self.files)}"
            )
        return self

    def class_index(self, name: str) -> int:
        """Index of a class by name; raises KeyError naming the known classes."""
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"class {name!r} not in model classes {self.classes[:10]}...") from None
