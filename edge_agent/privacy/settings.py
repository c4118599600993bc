"""Privacy gate settings: face model, anonymisation strength, image size and byte bounds.

Read once from the environment (prefix ``RETAIL_CV_PRIVACY_``, e.g.
``RETAIL_CV_PRIVACY_FACE_MODEL=/opt/retail-cv/models/face/yunet_n_dynamic.onnx``) or built
in code; validated at construction.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PrivacySettings(BaseSettings):
    """How the privacy gate finds and hides people, and how big what leaves may be."""

    model_config = SettingsConfigDict(env_prefix="RETAIL_CV_PRIVACY_", frozen=True, extra="forbid")

    face_model: Path | None = Field(
        None, description="YuNet ONNX file (yunet_n_dynamic.onnx or yunet_n_640_640.onnx)"
    )
    face_score_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="lowest YuNet score hidden: at 0.5 it found every face RetinaFace sees in "
        "the face footage; at 0.3 the 2x pass finds dozens of faces in noise",
    )
    face_nms_iou: float = Field(0.3, gt=0, le=1, description="YuNet NMS IoU threshold")
    upscale_max_side: int = Field(
        1280,
        ge=0,
        description="also look for faces at 2x when the enlarged image's longer side is at "
        "most this many pixels (finds faces of 8-15 px); 0 turns the second pass off",
    )
    face_pad: float = Field(
        0.3, ge=0, description="margin added on each side of a face box, as a share of its size"
    )
    person_min_confidence: float = Field(
        0.2, ge=0, le=1, description="person detections at least this sure get a head region"
    )
    head_height_share: float = Field(
        0.25, gt=0, le=1, description="head region height as a share of the person box height"
    )
    head_width_share: float = Field(
        0.6,
        gt=0,
        description="head region height at least this share of the person box width "
        "(keeps the head covered when the box is cut by the frame's bottom edge)",
    )
    head_pad: float = Field(
        0.15, ge=0, description="margin around a head region, as a share of the person box width"
    )
    blocks_across: int = Field(
        4,
        ge=1,
        le=8,
        description="pixelation cells across the shorter side of each hidden region: 4 makes "
        "a cell a third of a face or more, far too coarse to recognise anyone",
    )
    max_side: int = Field(640, ge=64, description="longest side of a released image (pixels)")
    jpeg_quality: int = Field(70, ge=20, le=95, description="starting JPEG quality")
    max_bytes: int = Field(
        150_000, ge=10_000, description="most bytes in one released image; shrunk until it fits"
    )
    heatmap_alpha: float = Field(0.6, ge=0, le=1, description="heatmap overlay opacity")

    @model_validator(mode="after")
    def _face_model_exists(self) -> PrivacySettings:
        if self.face_model is not None and not self.face_model.is_file():
            raise ValueError(
                f"face_model {self.face_model} does not exist; point RETAIL_CV_PRIVACY_FACE_MODEL "
                "(or --face-model) at yunet_n_dynamic.onnx"
            )
        return self
